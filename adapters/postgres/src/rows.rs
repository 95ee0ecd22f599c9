//! What every repository's rows share: the keyset predicate of a page.

use diesel::pg::Pg;
use diesel::sql_types::{Bool, Timestamptz, Uuid as SqlUuid};
use parley_kernel::Cursor;

/// `(at, id) < (cursor)` (`before`) or `> (cursor)` over the two named
/// columns: a row value, which PostgreSQL reads as a range of the index on
/// them, so page 500 starts where page 499 ended instead of reading the rows
/// before it. The SQLite adapter has the same helper (`rows::keyset`).
pub(crate) fn keyset<T>(
    columns: &'static str,
    before: bool,
    cursor: Cursor,
) -> Box<dyn diesel::BoxableExpression<T, Pg, SqlType = Bool>> {
    let op = if before { ") < (" } else { ") > (" };
    Box::new(
        diesel::dsl::sql::<Bool>(&format!("({columns}{op}"))
            .bind::<Timestamptz, _>(cursor.at)
            .sql(", ")
            .bind::<SqlUuid, _>(cursor.id)
            .sql(")"),
    )
}
