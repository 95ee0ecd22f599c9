//! Conversations, their messages and the tool calls the assistant made.

use parley_kernel::{ConversationId, MessageId, Timestamp, UserId};

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

impl Role {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }

    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "user" => Some(Self::User),
            "assistant" => Some(Self::Assistant),
            _ => None,
        }
    }
}

/// How a tool call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolStatus {
    Ok,
    Error,
}

impl ToolStatus {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
        }
    }
}

/// A tool the assistant ran, in the OpenAI shape plus its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as the model sent them: JSON text.
    pub arguments: String,
    pub result: Option<serde_json::Value>,
    pub status: ToolStatus,
}

impl ToolCall {
    /// The result as the model reads it: compact JSON, `null` when there is none.
    #[must_use]
    pub fn result_text(&self) -> String {
        self.result.as_ref().map_or_else(|| "null".to_owned(), ToString::to_string)
    }
}

/// One stored message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: MessageId,
    pub role: Role,
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    pub created_at: Timestamp,
}

impl Message {
    /// The characters of a model's context this message takes when it is
    /// sent again: its text, and each tool call's name, arguments and
    /// result. Stored with the message, so that a turn reads only the
    /// history that fits its budget.
    #[must_use]
    pub fn context_chars(&self) -> usize {
        self.content.chars().count()
            + self
                .tool_calls
                .iter()
                .map(|call| {
                    call.name.chars().count() + call.arguments.chars().count() + call.result_text().chars().count()
                })
                .sum::<usize>()
    }
}

/// A user's chat message: trimmed, 1..=2000 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageText(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageTextError {
    #[error("message must not be empty")]
    Empty,
    #[error("message must be at most {max} characters")]
    TooLong { max: usize },
}

impl MessageText {
    pub const MAX_CHARS: usize = 2000;

    /// # Errors
    /// `Empty` if blank after trimming, `TooLong` over 2000 characters.
    pub fn parse(raw: &str) -> Result<Self, MessageTextError> {
        Self::parse_bounded(raw, Self::MAX_CHARS).map(Self)
    }

    /// Trims `raw` and checks it holds 1..=`max` characters.
    ///
    /// # Errors
    /// `Empty` or `TooLong`.
    pub fn parse_bounded(raw: &str, max: usize) -> Result<String, MessageTextError> {
        let text = raw.trim();
        if text.is_empty() {
            Err(MessageTextError::Empty)
        } else if text.chars().count() > max {
            Err(MessageTextError::TooLong { max })
        } else {
            Ok(text.to_owned())
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A conversation title, derived from its first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationTitle(String);

impl ConversationTitle {
    pub const MAX_CHARS: usize = 60;

    /// The first line of the first message, cut to 60 characters on a word
    /// boundary where one is near.
    #[must_use]
    pub fn from_first_message(text: &MessageText) -> Self {
        let line = text.as_str().lines().next().unwrap_or_default().trim();
        if line.chars().count() <= Self::MAX_CHARS {
            return Self(line.to_owned());
        }
        let cut: String = line.chars().take(Self::MAX_CHARS - 1).collect();
        let cut = match cut.rfind(' ') {
            Some(space) if space > Self::MAX_CHARS / 2 => cut[..space].to_owned(),
            _ => cut,
        };
        Self(format!("{}…", cut.trim_end()))
    }

    /// A title read back from storage.
    #[must_use]
    pub fn from_stored(title: String) -> Self {
        Self(title)
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A conversation's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub id: ConversationId,
    pub owner: UserId,
    pub title: ConversationTitle,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A conversation as listed: its header and how many messages it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationSummary {
    pub conversation: Conversation,
    pub message_count: u64,
}

/// A conversation with all its messages, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationDetail {
    pub conversation: Conversation,
    /// The most recent messages asked for, oldest first among them.
    pub messages: Vec<Message>,
    /// Whether older messages exist than those in `messages`.
    pub has_more_messages: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_text_bounds() {
        assert_eq!(MessageText::parse("  \n "), Err(MessageTextError::Empty));
        assert!(MessageText::parse(&"a".repeat(2000)).is_ok());
        assert_eq!(MessageText::parse(&"a".repeat(2001)), Err(MessageTextError::TooLong { max: 2000 }));
    }

    #[test]
    fn title_is_first_line_shortened() {
        let text = MessageText::parse("add a task to buy milk\nand more").unwrap_or_else(|_| unreachable!());
        assert_eq!(ConversationTitle::from_first_message(&text).as_str(), "add a task to buy milk");
        let long = MessageText::parse(&"word ".repeat(40)).unwrap_or_else(|_| unreachable!());
        let title = ConversationTitle::from_first_message(&long);
        assert!(title.as_str().chars().count() <= ConversationTitle::MAX_CHARS);
        assert!(title.as_str().ends_with('…'));
    }
}
