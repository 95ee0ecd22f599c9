//! The shape of the spirit's replies: capped in words, with one planchette
//! timing per letter.

/// The name spirit messages are stored under.
pub const SPIRIT_NAME: &str = "Spirit";

/// The longest reply the spirit may give, in words.
pub const SPIRIT_REPLY_MAX_WORDS: usize = 30;

/// Shortest and longest pause of the planchette on one letter, in ms.
const LETTER_MS: (u32, u32) = (80, 200);

/// A reply of the spirit, ready to be said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpiritReply {
    pub message: String,
    pub word_count: usize,
    /// One pause in milliseconds per letter (non-whitespace character).
    pub letter_timings: Vec<u32>,
}

impl SpiritReply {
    /// Shapes raw model text: whitespace collapsed, cut to
    /// [`SPIRIT_REPLY_MAX_WORDS`] words. `None` if nothing is left.
    #[must_use]
    pub fn compose(raw: &str) -> Option<Self> {
        let words: Vec<&str> = raw.split_whitespace().take(SPIRIT_REPLY_MAX_WORDS).collect();
        if words.is_empty() {
            return None;
        }
        let message = words.join(" ");
        let letter_timings = message
            .chars()
            .filter(|c| !c.is_whitespace())
            .enumerate()
            .map(|(index, letter)| letter_pause(index, letter))
            .collect();
        Some(Self { word_count: words.len(), message, letter_timings })
    }
}

/// A pause that varies with the letter and its place, the same every time.
fn letter_pause(index: usize, letter: char) -> u32 {
    let (min, max) = LETTER_MS;
    let seed = (u64::from(u32::from(letter)) ^ (index as u64).wrapping_mul(0x9e37_79b9)).wrapping_mul(0x0100_0000_01b3);
    let spread = u64::from(max - min + 1);
    min + u32::try_from((seed >> 7) % spread).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_is_capped_with_one_timing_per_letter() {
        let long = "boo ".repeat(40);
        let reply = SpiritReply::compose(&long).unwrap_or_else(|| unreachable!());
        assert_eq!(reply.word_count, 30);
        assert_eq!(reply.message.split(' ').count(), 30);
        assert_eq!(reply.letter_timings.len(), 90);
        assert!(reply.letter_timings.iter().all(|ms| (80..=200).contains(ms)));
        assert!(reply.letter_timings.iter().collect::<std::collections::HashSet<_>>().len() > 1);
    }

    #[test]
    fn blank_text_is_no_reply_and_whitespace_is_collapsed() {
        assert_eq!(SpiritReply::compose(" \n "), None);
        let reply = SpiritReply::compose(" I  am\nhere ").unwrap_or_else(|| unreachable!());
        assert_eq!((reply.message.as_str(), reply.word_count, reply.letter_timings.len()), ("I am here", 3, 7));
        assert_eq!(SpiritReply::compose("I am here"), Some(reply));
    }
}
