//! `ConversationRepository` on PostgreSQL.

use async_trait::async_trait;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::QueryFragment;
use diesel::sql_types::{BigInt, Bool, Timestamptz, Uuid as SqlUuid};
use diesel_async::methods::LoadQuery;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use parley_conversations::{
    Conversation, ConversationDetail, ConversationError, ConversationRepository, ConversationSummary,
    ConversationTitle, FeedbackKind, Message, Role, ToolCall, ToolStatus,
};
use parley_kernel::{ConversationId, Cursor, MessageId, Page, PageRequest, StoreError, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{AccessError, PgError};
use crate::pool::{PgPool, read, write};
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

// Every field is bound as a value. Diesel's default (each field may become
// DEFAULT) marks the INSERT uncacheable: it was prepared again, one more round
// trip, on every call.
#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = conversations, check_for_backend(Pg), treat_none_as_default_value = false)]
pub(crate) struct ConversationRow {
    pub(crate) id: Uuid,
    user_id: Uuid,
    title: String,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
}

impl From<ConversationRow> for Conversation {
    fn from(row: ConversationRow) -> Self {
        Self {
            id: ConversationId::from_uuid(row.id),
            owner: UserId::from_uuid(row.user_id),
            title: ConversationTitle::from_stored(row.title),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

// Every field is bound as a value. Diesel's default (each field may become
// DEFAULT) marks the INSERT uncacheable: it was prepared again, one more round
// trip, on every call.
#[derive(Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = messages, check_for_backend(Pg), treat_none_as_default_value = false)]
pub(crate) struct MessageRow {
    pub(crate) id: Uuid,
    conversation_id: Uuid,
    role: String,
    content: String,
    tool_calls: serde_json::Value,
    pub(crate) created_at: Timestamp,
    context_chars: i32,
}

/// A row of [`HISTORY`].
#[derive(QueryableByName)]
struct HistoryRow {
    #[diesel(embed)]
    message: MessageRow,
    /// Whether the conversation has a message older than this one.
    #[diesel(sql_type = Bool)]
    older: bool,
}

/// A turn's history (`ConversationRepository::history`), newest first: the
/// running total of `context_chars` says where to stop, so the messages past
/// the budget are neither sent nor decoded. $1 the conversation, $2 the most
/// messages, $3 the characters.
const HISTORY: &str = "SELECT id, conversation_id, role, content, tool_calls, created_at, context_chars, older \
     FROM (SELECT m.*, sum(context_chars) OVER newest AS upto, lead(id) OVER newest IS NOT NULL AS older \
           FROM messages m WHERE conversation_id = $1 \
           WINDOW newest AS (ORDER BY created_at DESC, id DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) \
           ORDER BY created_at DESC, id DESC LIMIT $2) recent \
     WHERE upto - context_chars < $3 ORDER BY created_at DESC, id DESC";

/// One element of `messages.tool_calls`.
#[derive(Serialize, Deserialize)]
struct ToolCallJson {
    id: String,
    name: String,
    arguments: String,
    result: Option<serde_json::Value>,
    status: String,
}

impl MessageRow {
    fn new(conversation: ConversationId, message: &Message) -> Result<Self, PgError> {
        let calls: Vec<ToolCallJson> = message
            .tool_calls
            .iter()
            .map(|call| ToolCallJson {
                id: call.id.clone(),
                name: call.name.clone(),
                arguments: call.arguments.clone(),
                result: call.result.clone(),
                status: call.status.as_str().to_owned(),
            })
            .collect();
        Ok(Self {
            id: message.id.as_uuid(),
            conversation_id: conversation.as_uuid(),
            role: message.role.as_str().to_owned(),
            content: message.content.clone(),
            tool_calls: serde_json::to_value(calls).map_err(PgError::corrupt)?,
            created_at: message.created_at,
            context_chars: i32::try_from(message.context_chars()).unwrap_or(i32::MAX),
        })
    }
}

impl TryFrom<MessageRow> for Message {
    type Error = PgError;

    fn try_from(row: MessageRow) -> Result<Self, PgError> {
        let calls: Vec<ToolCallJson> = serde_json::from_value(row.tool_calls).map_err(PgError::corrupt)?;
        let tool_calls = calls
            .into_iter()
            .map(|call| {
                let status = match call.status.as_str() {
                    "ok" => ToolStatus::Ok,
                    "error" => ToolStatus::Error,
                    other => {
                        return Err(PgError::corrupt(format_args!("tool call status {other:?}")));
                    }
                };
                Ok(ToolCall { id: call.id, name: call.name, arguments: call.arguments, result: call.result, status })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            id: MessageId::from_uuid(row.id),
            role: Role::parse(&row.role).ok_or_else(|| PgError::corrupt(format_args!("role {:?}", row.role)))?,
            content: row.content,
            tool_calls,
            created_at: row.created_at,
        })
    }
}

/// Rows strictly after `cursor` in (updated_at desc, id desc) order.
fn after(cursor: Cursor) -> Box<dyn BoxableExpression<conversations::table, Pg, SqlType = Bool>> {
    Box::new(
        diesel::dsl::sql::<Bool>("(conversations.updated_at, conversations.id) < (")
            .bind::<Timestamptz, _>(cursor.at)
            .sql(", ")
            .bind::<SqlUuid, _>(cursor.id)
            .sql(")"),
    )
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
    let mut query = conversations::table
        .filter(conversations::user_id.eq(owner.as_uuid()))
        .select((ConversationRow::as_select(), message_count))
        .order((conversations::updated_at.desc(), conversations::id.desc()))
        .limit(limit)
        .into_boxed();
    if let Some(cursor) = cursor {
        query = query.filter(after(cursor));
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
    let mut query = messages::table.filter(messages::conversation_id.eq(id.as_uuid())).into_boxed();
    if let Some(cursor) = cursor {
        query = query.filter(
            diesel::dsl::sql::<Bool>("(messages.created_at, messages.id) > (")
                .bind::<Timestamptz, _>(cursor.at)
                .sql(", ")
                .bind::<SqlUuid, _>(cursor.id)
                .sql(")"),
        );
    }
    query.order((messages::created_at.asc(), messages::id.asc())).limit(limit).select(MessageRow::as_select())
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
                let total: i64 =
                    capped_count!(conversations::table.filter(conversations::user_id.eq(owner.as_uuid())), conn);
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
                let total: i64 =
                    capped_count!(messages::table.filter(messages::conversation_id.eq(id.as_uuid())), conn);
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
