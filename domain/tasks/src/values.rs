//! Task value types: parsed once, valid forever.

use std::fmt;
use std::str::FromStr;

/// A task title: trimmed, 1..=200 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskTitle(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskTitleError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 200 characters")]
    TooLong,
}

impl TaskTitle {
    pub const MAX_CHARS: usize = 200;

    /// # Errors
    /// `Empty` if blank after trimming, `TooLong` over 200 characters.
    pub fn parse(raw: &str) -> Result<Self, TaskTitleError> {
        let title = raw.trim();
        if title.is_empty() {
            Err(TaskTitleError::Empty)
        } else if title.chars().count() > Self::MAX_CHARS {
            Err(TaskTitleError::TooLong)
        } else {
            Ok(Self(title.to_owned()))
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TaskTitle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A task description: at most 1000 characters, possibly empty, kept as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskDescription(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskDescriptionError {
    #[error("must be at most 1000 characters")]
    TooLong,
}

impl TaskDescription {
    pub const MAX_CHARS: usize = 1000;

    /// # Errors
    /// `TooLong` over 1000 characters.
    pub fn parse(raw: &str) -> Result<Self, TaskDescriptionError> {
        if raw.chars().count() > Self::MAX_CHARS {
            Err(TaskDescriptionError::TooLong)
        } else {
            Ok(Self(raw.to_owned()))
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How urgent a task is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Priority {
    Low,
    #[default]
    Medium,
    High,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be one of low, medium, high")]
pub struct PriorityError;

impl Priority {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

impl FromStr for Priority {
    type Err = PriorityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "low" => Ok(Self::Low),
            "medium" => Ok(Self::Medium),
            "high" => Ok(Self::High),
            _ => Err(PriorityError),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_is_trimmed_and_bounded_in_characters() {
        assert_eq!(TaskTitle::parse("  Buy milk ").map(|t| t.0), Ok("Buy milk".into()));
        assert_eq!(TaskTitle::parse(" \t\n"), Err(TaskTitleError::Empty));
        assert!(TaskTitle::parse(&"日".repeat(200)).is_ok());
        assert_eq!(TaskTitle::parse(&"日".repeat(201)), Err(TaskTitleError::TooLong));
    }

    #[test]
    fn description_bounds() {
        assert!(TaskDescription::parse("").is_ok());
        assert!(TaskDescription::parse(&"x".repeat(1000)).is_ok());
        assert_eq!(TaskDescription::parse(&"x".repeat(1001)), Err(TaskDescriptionError::TooLong));
    }

    #[test]
    fn priority_round_trips_and_refuses_others() {
        for p in [Priority::Low, Priority::Medium, Priority::High] {
            assert_eq!(p.as_str().parse(), Ok(p));
        }
        assert_eq!("urgent".parse::<Priority>(), Err(PriorityError));
        assert_eq!("HIGH".parse::<Priority>(), Err(PriorityError));
    }
}
