//! `ConversationRepository` on PostgreSQL.

use async_trait::async_trait;
use diesel::dsl;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::QueryFragment;
use diesel::sql_types::{BigInt, Uuid as SqlUuid};
use diesel_async::methods::LoadQuery;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use parley_conversations::{
    Conversation, ConversationDetail, ConversationError, ConversationRepository, ConversationSummary,
    ConversationTitle, FeedbackKind, Message,
};
use parley_kernel::{ConversationId, Cursor, MessageId, Page, PageRequest, StoreError, Timestamp, UserId};
use uuid::Uuid;

use crate::conversation_rows::{ConversationRow, HISTORY, HistoryRow, MessageRow};
use crate::error::{AccessError, PgError};
use crate::pool::{PgPool, read, write};
use crate::rows::keyset;
use crate::schema::{conversations, item_feedback, messages};

/// Stores conversations and their messages in `conversations` and `messages`.
#[derive(Clone)]
pub struct PgConversationRepository {
    pool: PgPool,
}

impl PgConversationRepository {
    pub(crate) fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// The owner's conversations; the list reads them in [`recent_first`] order
/// (`conversations_user_updated_idx`), its pages and its capped count alike.
pub(crate) fn owned_by(owner: UserId) -> dsl::Filter<conversations::table, dsl::Eq<conversations::user_id, Uuid>> {
    conversations::table.filter(conversations::user_id.eq(owner.as_uuid()))
}

pub(crate) fn recent_first() -> (dsl::Desc<conversations::updated_at>, dsl::Desc<conversations::id>) {
    (conversations::updated_at.desc(), conversations::id.desc())
}

/// A conversation's messages; read in [`oldest_first`] order
/// (`messages_conversation_created_idx`).
pub(crate) fn messages_of(
    id: ConversationId,
) -> dsl::Filter<messages::table, dsl::Eq<messages::conversation_id, Uuid>> {
    messages::table.filter(messages::conversation_id.eq(id.as_uuid()))
}

pub(crate) fn oldest_first() -> (dsl::Asc<messages::created_at>, dsl::Asc<messages::id>) {
    (messages::created_at.asc(), messages::id.asc())
}

/// One page of the owner's conversations with their message counts, most
/// recently updated first, after `cursor`: the statement `list` runs.
pub(crate) fn list_page(
    owner: UserId,
    cursor: Option<Cursor>,
    limit: i64,
) -> impl LoadQuery<'static, AsyncPgConnection, (ConversationRow, i64)> + QueryFragment<Pg> + Send + 'static {
    // The count is a subquery per row of the page, not a join grouped over all
    // the owner's conversations: that read every conversation and every
    // message of the owner on every page (plans.rs).
    let message_count = diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT count(*) FROM messages WHERE messages.conversation_id = conversations.id)",
    );
    let mut query = owned_by(owner)
        .select((ConversationRow::as_select(), message_count))
        .order(recent_first())
        .limit(limit)
        .into_boxed();
    if let Some(cursor) = cursor {
        query = query.filter(keyset("conversations.updated_at, conversations.id", true, cursor));
    }
    query
}

/// One page of a conversation's messages, oldest first, after `cursor`: the
/// statement `messages` runs.
pub(crate) fn messages_page(
    id: ConversationId,
    cursor: Option<Cursor>,
    limit: i64,
) -> impl LoadQuery<'static, AsyncPgConnection, MessageRow> + QueryFragment<Pg> + Send + 'static {
    let mut query = messages_of(id).into_boxed();
    if let Some(cursor) = cursor {
        query = query.filter(keyset("messages.created_at, messages.id", false, cursor));
    }
    query.order(oldest_first()).limit(limit).select(MessageRow::as_select())
}

/// Locks the conversation row for the rest of the transaction and checks who owns it.
async fn check_owner(
    conn: &mut diesel_async::AsyncPgConnection,
    owner: UserId,
    id: ConversationId,
) -> Result<(), AccessError> {
    let found: Option<Uuid> = conversations::table
        .find(id.as_uuid())
        .select(conversations::user_id)
        .for_update()
        .first(conn)
        .await
        .optional()?;
    AccessError::check(found, owner.as_uuid())
}

/// The conversation `id`, if `owner` owns it.
async fn owned(conn: &mut AsyncPgConnection, owner: UserId, id: ConversationId) -> Result<Conversation, AccessError> {
    let row: Option<ConversationRow> =
        conversations::table.find(id.as_uuid()).select(ConversationRow::as_select()).first(conn).await.optional()?;
    AccessError::check(row.as_ref().map(|row| row.user_id), owner.as_uuid())?;
    Ok(Conversation::from(row.ok_or(AccessError::NotFound)?))
}

#[async_trait]
impl ConversationRepository for PgConversationRepository {
    #[tracing::instrument(skip_all, fields(conversation_id = %conversation.id))]
    async fn create(&self, conversation: &Conversation) -> Result<(), StoreError> {
        let row = ConversationRow {
            id: conversation.id.as_uuid(),
            user_id: conversation.owner.as_uuid(),
            title: conversation.title.as_str().to_owned(),
            created_at: conversation.created_at,
            updated_at: conversation.updated_at,
        };
        write(&self.pool, async |conn| {
            diesel::insert_into(conversations::table).values(&row).execute(conn).await?;
            Ok::<_, PgError>(())
        })
        .await?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn list(&self, owner: UserId, page: &PageRequest) -> Result<Page<ConversationSummary>, StoreError> {
        let limit = i64::try_from(page.limit() + 1).map_err(StoreError::unexpected)?;
        let (rows, total) = read(&self.pool, move || {
            async move |conn| {
                let total: i64 = capped_count!(owned_by(owner), recent_first(), conn);
                let rows: Vec<(ConversationRow, i64)> = list_page(owner, page.cursor(), limit).load(conn).await?;
                Ok::<_, PgError>((rows, total))
            }
        })
        .await?;
        let summaries = rows
            .into_iter()
            .map(|(row, count)| {
                let message_count = u64::try_from(count).map_err(StoreError::unexpected)?;
                Ok(ConversationSummary { conversation: row.into(), message_count })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let total = u64::try_from(total).map_err(StoreError::unexpected)?;
        Ok(Page::from_overfetch(summaries, page, total, |summary| Cursor {
            at: summary.conversation.updated_at,
            id: summary.conversation.id.as_uuid(),
        }))
    }

    #[tracing::instrument(skip_all, fields(conversation_id = %id))]
    async fn get(
        &self,
        owner: UserId,
        id: ConversationId,
        recent: usize,
    ) -> Result<ConversationDetail, ConversationError> {
        let fetch = i64::try_from(recent.saturating_add(1)).unwrap_or(i64::MAX);
        let detail = read(&self.pool, move || {
            async move |conn| {
                let conversation = owned(conn, owner, id).await?;
                let mut rows: Vec<MessageRow> = messages::table
                    .filter(messages::conversation_id.eq(id.as_uuid()))
                    .order((messages::created_at.desc(), messages::id.desc()))
                    .limit(fetch)
                    .select(MessageRow::as_select())
                    .load(conn)
                    .await?;
                let has_more_messages = rows.len() > recent;
                rows.truncate(recent);
                rows.reverse();
                let messages = rows.into_iter().map(Message::try_from).collect::<Result<_, _>>()?;
                Ok::<_, AccessError>(ConversationDetail { conversation, messages, has_more_messages })
            }
        })
        .await?;
        Ok(detail)
    }

    #[tracing::instrument(skip_all, fields(conversation_id = %id))]
    async fn history(
        &self,
        owner: UserId,
        id: ConversationId,
        max: usize,
        chars: usize,
    ) -> Result<ConversationDetail, ConversationError> {
        // Under 1 the newest message, with nothing before it, would not be taken.
        let (max, chars) = (i64::try_from(max).unwrap_or(i64::MAX), i64::try_from(chars.max(1)).unwrap_or(i64::MAX));
        let detail = read(&self.pool, move || {
            async move |conn| {
                let conversation = owned(conn, owner, id).await?;
                let rows: Vec<HistoryRow> = diesel::sql_query(HISTORY)
                    .bind::<SqlUuid, _>(id.as_uuid())
                    .bind::<BigInt, _>(max)
                    .bind::<BigInt, _>(chars)
                    .load(conn)
                    .await?;
                let has_more_messages = rows.last().is_some_and(|row| row.older);
                let mut messages =
                    rows.into_iter().map(|row| Message::try_from(row.message)).collect::<Result<Vec<_>, _>>()?;
                messages.reverse();
                Ok::<_, AccessError>(ConversationDetail { conversation, messages, has_more_messages })
            }
        })
        .await?;
        Ok(detail)
    }

    #[tracing::instrument(skip_all, fields(conversation_id = %id))]
    async fn messages(
        &self,
        owner: UserId,
        id: ConversationId,
        page: &PageRequest,
    ) -> Result<Page<Message>, ConversationError> {
        let fetch = i64::try_from(page.limit() + 1).map_err(StoreError::unexpected)?;
        let (rows, total) = read(&self.pool, move || {
            async move |conn| {
                check_owner(conn, owner, id).await?;
                let total: i64 = capped_count!(messages_of(id), oldest_first(), conn);
                let rows: Vec<MessageRow> = messages_page(id, page.cursor(), fetch).load(conn).await?;
                Ok::<_, AccessError>((rows, total))
            }
        })
        .await?;
        let messages =
            rows.into_iter().map(Message::try_from).collect::<Result<Vec<_>, _>>().map_err(AccessError::from)?;
        let total = u64::try_from(total).map_err(StoreError::unexpected)?;
        Ok(Page::from_overfetch(messages, page, total, |m| Cursor { at: m.created_at, id: m.id.as_uuid() }))
    }

    #[tracing::instrument(skip_all, fields(conversation_id = %id, message_id = %message.id))]
    async fn append(&self, owner: UserId, id: ConversationId, message: &Message) -> Result<(), ConversationError> {
        let row = MessageRow::new(id, message).map_err(AccessError::Pg)?;
        write(&self.pool, async |conn| {
            conn.transaction(async move |conn| {
                check_owner(conn, owner, id).await?;
                diesel::insert_into(messages::table).values(&row).execute(conn).await?;
                diesel::update(conversations::table.find(id.as_uuid()))
                    .set(conversations::updated_at.eq(row.created_at))
                    .execute(conn)
                    .await?;
                Ok::<_, AccessError>(())
            })
            .await
        })
        .await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(conversation_id = %id))]
    async fn rename(
        &self,
        owner: UserId,
        id: ConversationId,
        title: &ConversationTitle,
    ) -> Result<(), ConversationError> {
        let title = title.as_str().to_owned();
        write(&self.pool, async |conn| {
            let title = title.clone();
            conn.transaction(async move |conn| {
                check_owner(conn, owner, id).await?;
                diesel::update(conversations::table.find(id.as_uuid()))
                    .set(conversations::title.eq(title))
                    .execute(conn)
                    .await?;
                Ok::<_, AccessError>(())
            })
            .await
        })
        .await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(conversation_id = %id))]
    async fn delete_after(&self, owner: UserId, id: ConversationId, after: MessageId) -> Result<(), ConversationError> {
        let found = write(&self.pool, async |conn| {
            conn.transaction(async move |conn| {
                check_owner(conn, owner, id).await?;
                let at: Option<Timestamp> = messages::table
                    .find(after.as_uuid())
                    .filter(messages::conversation_id.eq(id.as_uuid()))
                    .select(messages::created_at)
                    .first(conn)
                    .await
                    .optional()?;
                let Some(at) = at else { return Ok::<_, AccessError>(false) };
                let later =
                    messages::created_at.gt(at).or(messages::created_at.eq(at).and(messages::id.gt(after.as_uuid())));
                diesel::delete(messages::table.filter(messages::conversation_id.eq(id.as_uuid())).filter(later))
                    .execute(conn)
                    .await?;
                Ok(true)
            })
            .await
        })
        .await?;
        if found { Ok(()) } else { Err(ConversationError::NotFound) }
    }

    #[tracing::instrument(skip_all, fields(conversation_id = %id))]
    async fn set_feedback(
        &self,
        owner: UserId,
        id: ConversationId,
        items: &[String],
        kind: FeedbackKind,
        at: Timestamp,
    ) -> Result<(), ConversationError> {
        use diesel::upsert::excluded;
        let rows: Vec<_> = items
            .iter()
            .map(|item| {
                (
                    item_feedback::conversation_id.eq(id.as_uuid()),
                    item_feedback::item_id.eq(item.clone()),
                    item_feedback::kind.eq(kind.as_str()),
                    item_feedback::created_at.eq(at),
                )
            })
            .collect();
        write(&self.pool, async |conn| {
            conn.transaction(async move |conn| {
                check_owner(conn, owner, id).await?;
                diesel::insert_into(item_feedback::table)
                    .values(&rows)
                    .on_conflict((item_feedback::conversation_id, item_feedback::item_id))
                    .do_update()
                    .set((
                        item_feedback::kind.eq(excluded(item_feedback::kind)),
                        item_feedback::created_at.eq(excluded(item_feedback::created_at)),
                    ))
                    .execute(conn)
                    .await?;
                Ok::<_, AccessError>(())
            })
            .await
        })
        .await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(conversation_id = %id))]
    async fn feedback(
        &self,
        owner: UserId,
        id: ConversationId,
    ) -> Result<Vec<(String, FeedbackKind)>, ConversationError> {
        let rows = read(&self.pool, move || {
            async move |conn| {
                check_owner(conn, owner, id).await?;
                let rows: Vec<(String, String)> = item_feedback::table
                    .filter(item_feedback::conversation_id.eq(id.as_uuid()))
                    .order(item_feedback::item_id.asc())
                    .select((item_feedback::item_id, item_feedback::kind))
                    .load(conn)
                    .await?;
                Ok::<_, AccessError>(rows)
            }
        })
        .await?;
        Ok(rows.into_iter().filter_map(|(item, kind)| FeedbackKind::parse(&kind).map(|kind| (item, kind))).collect())
    }

    #[tracing::instrument(skip_all, fields(conversation_id = %id))]
    async fn delete(&self, owner: UserId, id: ConversationId) -> Result<(), ConversationError> {
        write(&self.pool, async |conn| {
            conn.transaction(async move |conn| {
                check_owner(conn, owner, id).await?;
                // Messages go with it (ON DELETE CASCADE), inside this transaction.
                diesel::delete(conversations::table.find(id.as_uuid())).execute(conn).await?;
                Ok::<_, AccessError>(())
            })
            .await
        })
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserting_conversations_and_messages_reuses_the_prepared_statements() {
        let now = Timestamp::UNIX_EPOCH;
        let conversation = ConversationRow {
            id: Uuid::nil(),
            user_id: Uuid::nil(),
            title: "c".to_owned(),
            created_at: now,
            updated_at: now,
        };
        let message = MessageRow {
            id: Uuid::nil(),
            conversation_id: Uuid::nil(),
            role: "user".to_owned(),
            content: "hi".to_owned(),
            tool_calls: serde_json::Value::Array(Vec::new()),
            created_at: now,
            context_chars: 2,
        };
        assert!(crate::statement_is_cached(&diesel::insert_into(conversations::table).values(&conversation)));
        assert!(crate::statement_is_cached(&diesel::insert_into(messages::table).values(&message)));
    }
}
