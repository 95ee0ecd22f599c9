//! What `q` matches: the folded title contains the folded query.
//!
//! Both stores fold the same way, so a search answers the same on either
//! (decision 0008): Unicode full lower-case mapping (the `Final_Sigma` rule
//! included, as Rust's `str::to_lowercase` and ICU's root `lower` apply it),
//! then every final sigma `ς` becomes `σ`, so that `Σ`, `σ` and `ς` match one
//! another wherever they stand. Nothing else is folded: no accents are
//! removed, no compatibility forms are merged. Every character of the query is
//! literal (`%`, `_` and `\` included).

/// The search form of `text`: what a title is stored as for matching, and
/// what a query is turned into before it is looked for.
#[must_use]
pub fn fold_for_search(text: &str) -> String {
    text.to_lowercase().replace('ς', "σ")
}

/// Whether an index of three-character grams can find `folded` (a query
/// already passed through [`fold_for_search`]): it must hold a run of at
/// least three letters or digits. Shorter queries are matched by scanning the
/// owner's tasks; the answer is the same either way.
#[must_use]
pub fn has_trigram(folded: &str) -> bool {
    let mut run = 0;
    for ch in folded.chars() {
        run = if ch.is_alphanumeric() { run + 1 } else { 0 };
        if run >= 3 {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::{fold_for_search, has_trigram};

    #[test]
    fn folding_lowers_every_script_and_merges_the_sigmas() {
        assert_eq!(fold_for_search("École DU Soir"), "école du soir");
        assert_eq!(fold_for_search("ΟΔΟΣ"), "οδοσ");
        assert_eq!(fold_for_search("ς"), "σ");
        assert_eq!(fold_for_search("ПРИВЕТ"), "привет");
        assert_eq!(fold_for_search("İ"), "i\u{307}");
        assert_eq!(fold_for_search("Straße"), "straße", "ß is kept: lower-casing, not case folding");
        assert_eq!(fold_for_search(r"50%_A\b"), r"50%_a\b", "wildcards are plain characters");
    }

    #[test]
    fn a_trigram_needs_three_letters_or_digits_in_a_row() {
        assert!(has_trigram("abc"));
        assert!(has_trigram("task 42x"));
        assert!(has_trigram("éco"));
        assert!(!has_trigram("ab"));
        assert!(!has_trigram("a b c"));
        assert!(!has_trigram("%%%"));
        assert!(!has_trigram("42"));
        assert!(!has_trigram(""));
    }
}
