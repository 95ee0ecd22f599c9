//! `OfflineSpirit`: the séance spirit when no provider is configured. Its
//! persona for a real model and its word cap are the application's
//! (`parley_application::SPIRIT_PERSONA`, the domain's
//! `SPIRIT_REPLY_MAX_WORDS`).

use async_trait::async_trait;
use futures_util::stream::{self, StreamExt};
use parley_conversations::{ChatTurn, LanguageModel, ModelError, ModelStream, ToolSpec};

use crate::offline::text_events;

use parley_application::SPIRIT_REPLY_MAX_WORDS as SPIRIT_MAX_WORDS;

/// Replies to a question (the message ends with `?`). `{word}` echoes a word of it.
const QUESTION_TEMPLATES: &[&str] = &[
    "The board trembles... {word}? The answer drifts through the fog: yes, but not as you expect it.",
    "Ask not of {word}, dear guest. Some doors, once opened, never quite close again.",
    "I have counted the candles and the answer is no... though the third candle flickers yes.",
    "{word}... I remember {word}. It was raining that night, and someone laughed in the cellar.",
    "The veil is thin tonight. Yes. Yes. Now kindly stop asking before the others hear you.",
    "Who wishes to know of {word}? I see a shadow standing just behind your chair.",
    "The answer is written in the dust of the attic. Go and look. Bring a lamp.",
    "Perhaps. The clock in the hall stopped at midnight when you asked; that is rarely a good sign.",
];

/// Replies to a statement. `{word}` echoes a word of it.
const STATEMENT_TEMPLATES: &[&str] = &[
    "{word}... how very curious. In my day we spoke of such things only after the candles were out.",
    "I am listening, little mortals. The planchette is cold, and so, I fear, am I.",
    "Hush. Something else moved in the parlour when you spoke of {word}.",
    "Ah, {word}. I once kept a locket with that very word engraved inside. I buried it... somewhere.",
    "The fog thickens. Speak again, and speak of {word}, for it amuses the others here.",
    "How delightful. Nobody has mentioned {word} on this side of the veil for a century.",
    "Mind the draught, dear guests. It is only me, passing through the wallpaper again.",
    "Tap once for yes, twice for no. I shall tap three times, simply to vex you.",
];

/// Said when nobody has spoken yet.
const GREETING: &str =
    "Good evening... Who has lit the candles and called me from the cold? Speak, and I shall answer.";

/// Common words not worth echoing.
const STOPWORDS: &[&str] = &[
    "about", "after", "again", "because", "been", "before", "being", "could", "does", "doing", "from", "have", "here",
    "into", "just", "know", "like", "make", "more", "much", "should", "some", "tell", "that", "their", "them", "then",
    "there", "these", "they", "thing", "this", "those", "through", "very", "want", "were", "what", "when", "where",
    "which", "while", "will", "with", "would", "your", "yours", "spirit",
];

/// A [`LanguageModel`] that answers séance messages in character, offline.
///
/// It ignores the tools, reads the user turns since its last reply and picks a
/// reply from a set of templates by a hash of them: the same question gets
/// the same answer, different questions get varied ones. Replies are at most
/// [`SPIRIT_MAX_WORDS`] words.
#[derive(Debug, Clone, Copy, Default)]
pub struct OfflineSpirit;

impl OfflineSpirit {
    /// Creates the offline spirit.
    #[must_use]
    pub const fn new() -> Self {
        Self
    }
}

#[async_trait]
impl LanguageModel for OfflineSpirit {
    async fn stream(&self, history: &[ChatTurn], _tools: Vec<ToolSpec>) -> Result<ModelStream, ModelError> {
        let reply = spirit_reply(history);
        Ok(stream::iter(text_events(&reply).into_iter().map(Ok)).boxed())
    }
}

/// The user messages since the spirit's last reply (or the last one, if the
/// history ends with something else), joined.
fn latest_question(history: &[ChatTurn]) -> String {
    let trailing: Vec<&str> = history
        .iter()
        .rev()
        .take_while(|turn| !matches!(turn, ChatTurn::Assistant { .. }))
        .filter_map(|turn| match turn {
            ChatTurn::User(text) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    if trailing.is_empty() {
        return history
            .iter()
            .rev()
            .find_map(|turn| match turn {
                ChatTurn::User(text) => Some(text.clone()),
                _ => None,
            })
            .unwrap_or_default();
    }
    trailing.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// The spirit's answer to `history`, at most [`SPIRIT_MAX_WORDS`] words.
fn spirit_reply(history: &[ChatTurn]) -> String {
    let question = latest_question(history);
    let question = question.trim();
    if question.is_empty() {
        return GREETING.to_owned();
    }
    let hash = fnv1a(question.to_lowercase().as_bytes());
    let templates = if question.ends_with('?') { QUESTION_TEMPLATES } else { STATEMENT_TEMPLATES };
    let word = echo_word(question);
    let usable: Vec<&str> =
        templates.iter().copied().filter(|template| word.is_some() || !template.contains("{word}")).collect();
    let index = usize::try_from(hash % (usable.len().max(1) as u64)).unwrap_or(0);
    let template = usable.get(index).copied().unwrap_or(GREETING);
    let reply = match &word {
        Some(word) => capitalise_start(&template.replace("{word}", word)),
        None => template.to_owned(),
    };
    limit_words(&reply, SPIRIT_MAX_WORDS)
}

/// The most interesting word of the question: the longest non-trivial one.
fn echo_word(question: &str) -> Option<String> {
    question
        .split(|c: char| !c.is_alphabetic() && c != '\'')
        .map(|word| word.trim_matches('\''))
        .filter(|word| word.chars().count() >= 4 && word.chars().count() <= 20)
        .map(str::to_lowercase)
        .filter(|word| !STOPWORDS.contains(&word.as_str()))
        .fold(None, |best: Option<String>, word| match best {
            Some(best) if best.chars().count() >= word.chars().count() => Some(best),
            _ => Some(word),
        })
}

fn capitalise_start(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| first.to_uppercase().chain(chars).collect())
}

fn limit_words(text: &str, max: usize) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() <= max { words.join(" ") } else { format!("{}...", words[..max].join(" ")) }
}

/// FNV-1a: a stable hash (unlike `DefaultHasher`, fixed across Rust releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use parley_conversations::ModelEvent;

    fn words(text: &str) -> usize {
        text.split_whitespace().count()
    }

    #[test]
    fn every_template_fits_in_thirty_words() {
        for template in QUESTION_TEMPLATES.iter().chain(STATEMENT_TEMPLATES).chain([&GREETING]) {
            let filled = template.replace("{word}", "supercalifragilistic");
            assert!(words(&filled) <= SPIRIT_MAX_WORDS, "too long: {filled}");
        }
    }

    #[test]
    fn reply_is_deterministic_and_varies_with_the_question() {
        let ask = |q: &str| spirit_reply(&[ChatTurn::User(q.to_owned())]);
        assert_eq!(ask("Is anyone there?"), ask("Is anyone there?"));
        let replies: std::collections::HashSet<String> = [
            "Is anyone there?",
            "Will it rain tomorrow?",
            "Who are you?",
            "Hello spirit",
            "We brought biscuits",
            "Do ghosts dream?",
        ]
        .iter()
        .map(|q| ask(q))
        .collect();
        assert!(replies.len() >= 3, "replies are not varied: {replies:?}");
        for reply in &replies {
            assert!(words(reply) <= SPIRIT_MAX_WORDS);
        }
    }

    #[test]
    fn echo_picks_the_longest_meaningful_word() {
        assert_eq!(echo_word("Where is my grandmother's necklace?").as_deref(), Some("grandmother's"));
        assert_eq!(echo_word("Is it you?"), None);
        assert_eq!(echo_word("what would they tell"), None);
    }

    #[test]
    fn reads_only_the_turns_since_its_last_reply() {
        let history = vec![
            ChatTurn::System(parley_application::SPIRIT_PERSONA.to_owned()),
            ChatTurn::User("Alice: Do you know about the lighthouse?".to_owned()),
            ChatTurn::Assistant { content: "Perhaps.".to_owned(), tool_calls: vec![] },
            ChatTurn::User("Bob: tell us about the orchard".to_owned()),
            ChatTurn::User("Carol: and the cellar".to_owned()),
        ];
        assert_eq!(latest_question(&history), "Bob: tell us about the orchard\nCarol: and the cellar");
        assert_eq!(latest_question(&history[..3]), "Alice: Do you know about the lighthouse?");
        assert_eq!(spirit_reply(&[]), GREETING);
    }

    #[test]
    fn long_text_is_cut_to_the_limit() {
        let long = "word ".repeat(50);
        assert_eq!(words(&limit_words(&long, SPIRIT_MAX_WORDS)), SPIRIT_MAX_WORDS);
        assert_eq!(limit_words("a  b", 30), "a b");
    }

    #[tokio::test]
    async fn streams_the_reply_in_several_deltas_and_ignores_tools() {
        let spirit = OfflineSpirit::new();
        let history = vec![ChatTurn::User("Is the lighthouse haunted?".to_owned())];
        let events: Vec<_> = spirit.stream(&history, Vec::new()).await.unwrap().collect().await;
        assert!(events.len() > 3);
        let text: String = events
            .into_iter()
            .map(|event| match event {
                Ok(ModelEvent::TextDelta(text)) => text,
                other => panic!("unexpected event {other:?}"),
            })
            .collect();
        assert_eq!(text, spirit_reply(&history));
        assert!(words(&text) <= SPIRIT_MAX_WORDS);
    }
}
