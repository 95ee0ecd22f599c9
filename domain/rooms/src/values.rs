//! Room value types: parsed once, valid forever.

use std::fmt;

/// A room's name: trimmed, 1..=100 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomNameError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 100 characters")]
    TooLong,
}

impl RoomName {
    pub const MAX_CHARS: usize = 100;

    /// # Errors
    /// `Empty` if blank after trimming, `TooLong` over 100 characters.
    pub fn parse(raw: &str) -> Result<Self, RoomNameError> {
        let name = raw.trim();
        if name.is_empty() {
            Err(RoomNameError::Empty)
        } else if name.chars().count() > Self::MAX_CHARS {
            Err(RoomNameError::TooLong)
        } else {
            Ok(Self(name.to_owned()))
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How many distinct users may be in a room at once: 2..=50, default 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MaxUsers(u8);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be between 2 and 50")]
pub struct MaxUsersError;

impl MaxUsers {
    pub const MIN: u8 = 2;
    pub const MAX: u8 = 50;
    pub const DEFAULT: Self = Self(6);

    /// # Errors
    /// `MaxUsersError` unless `2 <= value <= 50`.
    pub fn new(value: i64) -> Result<Self, MaxUsersError> {
        u8::try_from(value).ok().filter(|v| (Self::MIN..=Self::MAX).contains(v)).map(Self).ok_or(MaxUsersError)
    }

    #[must_use]
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl Default for MaxUsers {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A message said in a room: trimmed, 1..=500 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomMessageText(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RoomMessageTextError {
    #[error("the message must not be empty")]
    Empty,
    #[error("the message must be at most 500 characters")]
    TooLong,
}

impl RoomMessageTextError {
    /// The contract's stable error code.
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::Empty => "EMPTY_MESSAGE",
            Self::TooLong => "MESSAGE_TOO_LONG",
        }
    }
}

impl RoomMessageText {
    pub const MAX_CHARS: usize = 500;

    /// # Errors
    /// `Empty` if blank after trimming, `TooLong` over 500 characters.
    pub fn parse(raw: &str) -> Result<Self, RoomMessageTextError> {
        let text = raw.trim();
        if text.is_empty() {
            Err(RoomMessageTextError::Empty)
        } else if text.chars().count() > Self::MAX_CHARS {
            Err(RoomMessageTextError::TooLong)
        } else {
            Ok(Self(text.to_owned()))
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_is_trimmed_and_bounded() {
        assert_eq!(RoomName::parse("  Attic  ").map(|n| n.0), Ok("Attic".into()));
        assert_eq!(RoomName::parse(" "), Err(RoomNameError::Empty));
        assert!(RoomName::parse(&"é".repeat(100)).is_ok());
        assert_eq!(RoomName::parse(&"é".repeat(101)), Err(RoomNameError::TooLong));
    }

    #[test]
    fn max_users_bounds() {
        assert_eq!(MaxUsers::new(1), Err(MaxUsersError));
        assert_eq!(MaxUsers::new(51), Err(MaxUsersError));
        assert_eq!(MaxUsers::new(-3), Err(MaxUsersError));
        assert_eq!(MaxUsers::new(2).map(MaxUsers::get), Ok(2));
        assert_eq!(MaxUsers::new(50).map(MaxUsers::get), Ok(50));
        assert_eq!(MaxUsers::default().get(), 6);
    }

    #[test]
    fn message_text_rules_and_codes() {
        assert_eq!(RoomMessageText::parse(" hi ").map(RoomMessageText::into_string), Ok("hi".into()));
        assert_eq!(RoomMessageText::parse("\n").map_err(RoomMessageTextError::code), Err("EMPTY_MESSAGE"));
        assert!(RoomMessageText::parse(&"x".repeat(500)).is_ok());
        assert_eq!(
            RoomMessageText::parse(&"x".repeat(501)).map_err(RoomMessageTextError::code),
            Err("MESSAGE_TOO_LONG")
        );
    }
}
