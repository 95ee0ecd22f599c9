//! Keyset pagination: a page request (limit + opaque cursor) and a page.

use std::fmt;

use uuid::Uuid;

use crate::Timestamp;

/// Where the previous page stopped: the sort key of its last item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub at: Timestamp,
    pub id: Uuid,
}

/// The cursor text was not one this server produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed cursor")]
pub struct CursorError;

impl Cursor {
    /// Renders the cursor as an opaque token (hex of `micros:uuid`).
    #[must_use]
    pub fn encode(&self) -> String {
        hex::encode(format!("{}:{}", self.at.timestamp_micros(), self.id.simple()))
    }

    /// Parses a token made by [`Cursor::encode`].
    ///
    /// # Errors
    /// `CursorError` if the token is not one `encode` produced.
    pub fn decode(token: &str) -> Result<Self, CursorError> {
        let bytes = hex::decode(token).map_err(|_| CursorError)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| CursorError)?;
        let (micros, id) = text.split_once(':').ok_or(CursorError)?;
        let micros: i64 = micros.parse().map_err(|_| CursorError)?;
        let at = chrono::DateTime::from_timestamp_micros(micros).ok_or(CursorError)?;
        let id = Uuid::parse_str(id).map_err(|_| CursorError)?;
        Ok(Self { at, id })
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

/// The limit was outside 1..=100.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be between 1 and 100")]
pub struct LimitError;

/// Which page to read: at most `limit` items after `cursor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    limit: u8,
    cursor: Option<Cursor>,
}

impl PageRequest {
    pub const DEFAULT_LIMIT: u8 = 50;
    pub const MAX_LIMIT: u8 = 100;

    /// # Errors
    /// `LimitError` unless `1 <= limit <= 100`.
    pub fn new(limit: Option<i64>, cursor: Option<Cursor>) -> Result<Self, LimitError> {
        let limit = match limit {
            None => Self::DEFAULT_LIMIT,
            Some(n) if (1..=i64::from(Self::MAX_LIMIT)).contains(&n) => u8::try_from(n).map_err(|_| LimitError)?,
            Some(_) => return Err(LimitError),
        };
        Ok(Self { limit, cursor })
    }

    #[must_use]
    pub fn limit(&self) -> usize {
        usize::from(self.limit)
    }

    #[must_use]
    pub fn cursor(&self) -> Option<Cursor> {
        self.cursor
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self { limit: Self::DEFAULT_LIMIT, cursor: None }
    }
}

/// Totals are exact up to this many matching items; past it a list says
/// "at least this many" rather than count every row (API.md, `total_relation`).
pub const TOTAL_CAP: u64 = 10_000;

/// One page of items plus where the next one starts and how many match in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<Cursor>,
    /// All matching items, at most [`TOTAL_CAP`].
    pub total: u64,
    /// Whether `total` is exact; `false` when more than [`TOTAL_CAP`] match.
    pub total_exact: bool,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows: the extra row, if any, only
    /// proves there is a next page, whose cursor is the last kept item's key.
    /// `counted` is the matching items counted up to `TOTAL_CAP + 1`.
    pub fn from_overfetch(mut rows: Vec<T>, request: &PageRequest, counted: u64, key: impl Fn(&T) -> Cursor) -> Self {
        let next_cursor = if rows.len() > request.limit() {
            rows.truncate(request.limit());
            rows.last().map(key)
        } else {
            None
        };
        Self { items: rows, next_cursor, total: counted.min(TOTAL_CAP), total_exact: counted <= TOTAL_CAP }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
            total: self.total,
            total_exact: self.total_exact,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        let cursor = Cursor { at: chrono::Utc::now(), id: Uuid::now_v7() };
        let decoded = Cursor::decode(&cursor.encode()).map(|c| (c.at.timestamp_micros(), c.id));
        assert_eq!(decoded, Ok((cursor.at.timestamp_micros(), cursor.id)));
    }

    #[test]
    fn garbage_cursor_is_refused() {
        assert_eq!(Cursor::decode("zz"), Err(CursorError));
        assert_eq!(Cursor::decode(&hex::encode("12:nope")), Err(CursorError));
    }

    #[test]
    fn limit_bounds() {
        assert!(PageRequest::new(Some(0), None).is_err());
        assert!(PageRequest::new(Some(101), None).is_err());
        assert_eq!(PageRequest::new(Some(100), None).map(|p| p.limit()), Ok(100));
        assert_eq!(PageRequest::new(None, None).map(|p| p.limit()), Ok(50));
    }

    #[test]
    fn overfetch_yields_next_cursor_only_when_more_rows_exist() {
        let request = PageRequest::new(Some(2), None).unwrap_or_default();
        let key = |n: &u32| Cursor { at: chrono::DateTime::UNIX_EPOCH, id: Uuid::from_u128(u128::from(*n)) };
        let full = Page::from_overfetch(vec![1, 2, 3], &request, 3, key);
        assert_eq!(full.items, vec![1, 2]);
        assert_eq!(full.next_cursor.map(|c| c.id), Some(Uuid::from_u128(2)));
        let last = Page::from_overfetch(vec![3], &request, 3, key);
        assert_eq!(last.next_cursor, None);
    }
}
