//! Typed UUIDv7 ids: one newtype per aggregate so ids cannot be mixed up.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// The text was not a UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid UUID")]
pub struct IdParseError;

macro_rules! id_type {
    ($($(#[$meta:meta])* $name:ident),* $(,)?) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new id; UUIDv7, so ids sort by creation time.
            #[must_use]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an id read back from storage or a trusted source.
            #[must_use]
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            #[must_use]
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self).map_err(|_| IdParseError)
            }
        }
    )*};
}

id_type!(
    /// Identifies a registered user.
    UserId,
    /// Identifies one task of one user.
    TaskId,
    /// Identifies an assistant conversation (also a ChatKit session).
    ConversationId,
    /// Identifies one message of a conversation.
    MessageId,
    /// Identifies a séance room.
    RoomId,
    /// Identifies one message said in a séance room.
    RoomMessageId,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text() {
        let id = TaskId::new();
        assert_eq!(id.to_string().parse::<TaskId>(), Ok(id));
    }

    #[test]
    fn malformed_id_is_refused() {
        assert_eq!("not-a-uuid".parse::<UserId>(), Err(IdParseError));
    }

    #[test]
    fn ids_sort_by_creation() {
        let first = TaskId::new();
        let second = TaskId::new();
        assert!(first < second);
    }
}
