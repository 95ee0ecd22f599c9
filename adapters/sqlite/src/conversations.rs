//! `ConversationRepository` on SQLite.

use async_trait::async_trait;
use diesel::connection::DefaultLoadingMode;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::query_builder::QueryFragment;
use diesel::query_dsl::LoadQuery;
use diesel::sql_types::BigInt;
use diesel::sqlite::Sqlite;
use parley_conversations::{Conversation, ConversationTitle, FeedbackKind};
use parley_conversations::{
    ConversationDetail, ConversationError, ConversationRepository, ConversationSummary, Message,
};
use parley_kernel::{ConversationId, Cursor, MessageId, Page, PageRequest, StoreError, Timestamp, UserId};

use crate::SqliteStore;
use crate::conversation_rows::{ConversationRow, MessageRow, NewMessageRow};
use crate::error::{AccessError, SqliteError};
use crate::rows::{keyset, to_micros};
use crate::schema::{conversations, item_feedback, messages};

/// Each user's conversations and their messages.
pub struct SqliteConversationRepository {
    store: SqliteStore,
}

impl SqliteConversationRepository {
    pub(crate) fn new(store: SqliteStore) -> Self {
        Self { store }
    }
}

/// Checks who owns the conversation `id`.
fn check_owner(conn: &mut SqliteConnection, id: &str, owner: &str) -> Result<(), AccessError> {
    let found: Option<String> = conversations::table.find(id).select(conversations::user_id).first(conn).optional()?;
    AccessError::check(found.as_deref(), owner)
}

/// The conversation `id`, if `owner` owns it.
fn owned(conn: &mut SqliteConnection, id: &str, owner: &str) -> Result<ConversationRow, AccessError> {
    let row: Option<ConversationRow> =
        conversations::table.find(id).select(ConversationRow::as_select()).first(conn).optional()?;
    AccessError::check(row.as_ref().map(|row| row.user_id.as_str()), owner)?;
    row.ok_or(AccessError::NotFound)
}

/// One page of the owner's conversations with their message counts, most
/// recently updated first, after `cursor`: the statement `list` runs. The
/// count is a subquery per row of the page; a join grouped over all the
/// owner's conversations read every one of them on every page.
pub(crate) fn list_page(
    owner: &str,
    cursor: Option<Cursor>,
    limit: i64,
) -> impl LoadQuery<'static, SqliteConnection, (ConversationRow, i64)> + QueryFragment<Sqlite> + Send + 'static {
    let message_count =
        sql::<BigInt>("(SELECT count(*) FROM messages WHERE messages.conversation_id = conversations.id)");
    let mut query = conversations::table
        .filter(conversations::user_id.eq(owner.to_owned()))
        .select((ConversationRow::as_select(), message_count))
        .order((conversations::updated_at.desc(), conversations::id.desc()))
        .limit(limit)
        .into_boxed();
    if let Some(cursor) = cursor {
        query = query.filter(keyset("conversations.updated_at, conversations.id", true, cursor));
    }
    query
}

/// One page of a conversation's messages, oldest first, after `cursor`.
pub(crate) fn messages_page(
    id: &str,
    cursor: Option<Cursor>,
    limit: i64,
) -> impl LoadQuery<'static, SqliteConnection, MessageRow> + QueryFragment<Sqlite> + Send + 'static {
    let mut query = messages::table
        .filter(messages::conversation_id.eq(id.to_owned()))
        .order((messages::created_at.asc(), messages::id.asc()))
        .limit(limit)
        .select(MessageRow::as_select())
        .into_boxed();
    if let Some(cursor) = cursor {
        query = query.filter(keyset("messages.created_at, messages.id", false, cursor));
    }
    query
}

/// A conversation's newest `limit` messages, newest first: the table's own
/// key, (conversation_id, created_at, id), read backwards, so the messages
/// are adjacent rows of a few pages.
pub(crate) fn newest_messages(
    id: &str,
    limit: i64,
) -> impl LoadQuery<'static, SqliteConnection, MessageRow> + QueryFragment<Sqlite> + Send + 'static {
    messages::table
        .filter(messages::conversation_id.eq(id.to_owned()))
        .order((messages::created_at.desc(), messages::id.desc()))
        .limit(limit)
        .select(MessageRow::as_select())
}

#[async_trait]
impl ConversationRepository for SqliteConversationRepository {
    #[tracing::instrument(skip_all, fields(conversation_id = %conversation.id))]
    async fn create(&self, conversation: &Conversation) -> Result<(), StoreError> {
        let row = ConversationRow::from_conversation(conversation);
        self.store
            .run(move |conn| {
                diesel::insert_into(conversations::table).values(&row).execute(conn)?;
                Ok::<_, SqliteError>(())
            })
            .await?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn list(&self, owner: UserId, page: &PageRequest) -> Result<Page<ConversationSummary>, StoreError> {
        let (owner, cursor) = (owner.to_string(), page.cursor());
        let fetch = i64::try_from(page.limit() + 1).unwrap_or(i64::MAX);
        let (rows, total) = self
            .store
            .run(move |conn| {
                conn.transaction(|conn| {
                    let total: i64 =
                        capped_count!(conversations::table.filter(conversations::user_id.eq(&owner)), conn);
                    let rows: Vec<(ConversationRow, i64)> = list_page(&owner, cursor, fetch).load(conn)?;
                    Ok::<_, SqliteError>((rows, total))
                })
            })
            .await?;
        let summaries = rows
            .into_iter()
            .map(|(row, messages)| {
                Ok(ConversationSummary {
                    conversation: row.into_conversation()?,
                    message_count: u64::try_from(messages).unwrap_or_default(),
                })
            })
            .collect::<Result<Vec<_>, crate::rows::CorruptRow>>()?;
        let total = u64::try_from(total).unwrap_or_default();
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
        let (key, owner) = (id.to_string(), owner.to_string());
        let fetch = i64::try_from(recent.saturating_add(1)).unwrap_or(i64::MAX);
        let (row, mut messages) = self
            .store
            .run(move |conn| {
                conn.transaction(|conn| {
                    let row = owned(conn, &key, &owner)?;
                    let messages: Vec<MessageRow> = newest_messages(&key, fetch).load(conn)?;
                    Ok::<_, AccessError>((row, messages))
                })
            })
            .await?;
        let has_more_messages = messages.len() > recent;
        messages.truncate(recent);
        messages.reverse();
        let detail = (|| {
            Ok::<_, crate::rows::CorruptRow>(ConversationDetail {
                conversation: row.into_conversation()?,
                messages: messages.into_iter().map(MessageRow::into_message).collect::<Result<_, _>>()?,
                has_more_messages,
            })
        })();
        Ok(detail.map_err(StoreError::from)?)
    }

    #[tracing::instrument(skip_all, fields(conversation_id = %id))]
    async fn history(
        &self,
        owner: UserId,
        id: ConversationId,
        max: usize,
        chars: usize,
    ) -> Result<ConversationDetail, ConversationError> {
        let (key, owner) = (id.to_string(), owner.to_string());
        // One more than `max` is read (whether older messages exist).
        let fetch = i64::try_from(max.saturating_add(1)).unwrap_or(i64::MAX);
        // Under 1 the newest message, with nothing before it, would not be taken.
        let chars = chars.max(1);
        let (row, rows, has_more_messages) = self
            .store
            .run(move |conn| {
                conn.transaction(|conn| {
                    let row = owned(conn, &key, &owner)?;
                    let (mut rows, mut older, mut before) = (Vec::new(), false, 0usize);
                    // Newest first down the index, stopping at the first row
                    // past `max` or the budget (which says older ones exist):
                    // no sort, and the rows past it are neither read nor decoded.
                    for message in newest_messages(&key, fetch).load_iter::<MessageRow, DefaultLoadingMode>(conn)? {
                        let message = message?;
                        if rows.len() == max || before >= chars {
                            older = true;
                            break;
                        }
                        before += usize::try_from(message.context_chars).unwrap_or(0);
                        rows.push(message);
                    }
                    Ok::<_, AccessError>((row, rows, older))
                })
            })
            .await?;
        let detail = (|| {
            let mut messages = rows.into_iter().map(MessageRow::into_message).collect::<Result<Vec<_>, _>>()?;
            messages.reverse();
            Ok::<_, crate::rows::CorruptRow>(ConversationDetail {
                conversation: row.into_conversation()?,
                messages,
                has_more_messages,
            })
        })();
        Ok(detail.map_err(StoreError::from)?)
    }

    #[tracing::instrument(skip_all, fields(conversation_id = %id))]
    async fn messages(
        &self,
        owner: UserId,
        id: ConversationId,
        page: &PageRequest,
    ) -> Result<Page<Message>, ConversationError> {
        let (key, owner, cursor) = (id.to_string(), owner.to_string(), page.cursor());
        let fetch = i64::try_from(page.limit() + 1).unwrap_or(i64::MAX);
        let (rows, total) = self
            .store
            .run(move |conn| {
                conn.transaction(|conn| {
                    check_owner(conn, &key, &owner)?;
                    let total: i64 = capped_count!(messages::table.filter(messages::conversation_id.eq(&key)), conn);
                    let rows: Vec<MessageRow> = messages_page(&key, cursor, fetch).load(conn)?;
                    Ok::<_, AccessError>((rows, total))
                })
            })
            .await?;
        let messages =
            rows.into_iter().map(MessageRow::into_message).collect::<Result<Vec<_>, _>>().map_err(StoreError::from)?;
        let total = u64::try_from(total).unwrap_or_default();
        Ok(Page::from_overfetch(messages, page, total, |m| Cursor { at: m.created_at, id: m.id.as_uuid() }))
    }

    #[tracing::instrument(skip_all, fields(conversation_id = %id, message_id = %message.id))]
    async fn append(&self, owner: UserId, id: ConversationId, message: &Message) -> Result<(), ConversationError> {
        let (key, owner) = (id.to_string(), owner.to_string());
        let row = NewMessageRow::from_message(id, message).map_err(StoreError::from)?;
        Ok(self
            .store
            .run(move |conn| {
                conn.immediate_transaction(|conn| {
                    check_owner(conn, &key, &owner)?;
                    let updated_at = row.created_at;
                    diesel::insert_into(messages::table).values(&row).execute(conn)?;
                    diesel::update(conversations::table.find(&key))
                        .set(conversations::updated_at.eq(updated_at))
                        .execute(conn)?;
                    Ok::<_, AccessError>(())
                })
            })
            .await?)
    }

    #[tracing::instrument(skip_all, fields(conversation_id = %id))]
    async fn rename(
        &self,
        owner: UserId,
        id: ConversationId,
        title: &ConversationTitle,
    ) -> Result<(), ConversationError> {
        let (key, owner, title) = (id.to_string(), owner.to_string(), title.as_str().to_owned());
        Ok(self
            .store
            .run(move |conn| {
                conn.immediate_transaction(|conn| {
                    check_owner(conn, &key, &owner)?;
                    diesel::update(conversations::table.find(&key))
                        .set(conversations::title.eq(&title))
                        .execute(conn)?;
                    Ok::<_, AccessError>(())
                })
            })
            .await?)
    }

    #[tracing::instrument(skip_all, fields(conversation_id = %id))]
    async fn delete_after(&self, owner: UserId, id: ConversationId, after: MessageId) -> Result<(), ConversationError> {
        let (key, owner, after) = (id.to_string(), owner.to_string(), after.to_string());
        Ok(self
            .store
            .run(move |conn| {
                conn.immediate_transaction(|conn| {
                    check_owner(conn, &key, &owner)?;
                    let at: Option<i64> = messages::table
                        .find(&after)
                        .filter(messages::conversation_id.eq(&key))
                        .select(messages::created_at)
                        .first(conn)
                        .optional()?;
                    let Some(at) = at else { return Err(AccessError::NotFound) };
                    let later =
                        messages::created_at.gt(at).or(messages::created_at.eq(at).and(messages::id.gt(&after)));
                    diesel::delete(messages::table.filter(messages::conversation_id.eq(&key)).filter(later))
                        .execute(conn)?;
                    Ok::<_, AccessError>(())
                })
            })
            .await?)
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
        let (key, owner, items, at) = (id.to_string(), owner.to_string(), items.to_vec(), to_micros(at));
        Ok(self
            .store
            .run(move |conn| {
                conn.immediate_transaction(|conn| {
                    check_owner(conn, &key, &owner)?;
                    for item in &items {
                        diesel::insert_into(item_feedback::table)
                            .values((
                                item_feedback::conversation_id.eq(&key),
                                item_feedback::item_id.eq(item),
                                item_feedback::kind.eq(kind.as_str()),
                                item_feedback::created_at.eq(at),
                            ))
                            .on_conflict((item_feedback::conversation_id, item_feedback::item_id))
                            .do_update()
                            .set((
                                item_feedback::kind.eq(excluded(item_feedback::kind)),
                                item_feedback::created_at.eq(excluded(item_feedback::created_at)),
                            ))
                            .execute(conn)?;
                    }
                    Ok::<_, AccessError>(())
                })
            })
            .await?)
    }

    #[tracing::instrument(skip_all, fields(conversation_id = %id))]
    async fn feedback(
        &self,
        owner: UserId,
        id: ConversationId,
    ) -> Result<Vec<(String, FeedbackKind)>, ConversationError> {
        let (key, owner) = (id.to_string(), owner.to_string());
        let rows = self
            .store
            .run(move |conn| {
                conn.transaction(|conn| {
                    check_owner(conn, &key, &owner)?;
                    let rows: Vec<(String, String)> = item_feedback::table
                        .filter(item_feedback::conversation_id.eq(&key))
                        .order(item_feedback::item_id.asc())
                        .select((item_feedback::item_id, item_feedback::kind))
                        .load(conn)?;
                    Ok::<_, AccessError>(rows)
                })
            })
            .await?;
        Ok(rows.into_iter().filter_map(|(item, kind)| FeedbackKind::parse(&kind).map(|kind| (item, kind))).collect())
    }

    #[tracing::instrument(skip_all, fields(conversation_id = %id))]
    async fn delete(&self, owner: UserId, id: ConversationId) -> Result<(), ConversationError> {
        let (key, owner) = (id.to_string(), owner.to_string());
        Ok(self
            .store
            .run(move |conn| {
                conn.immediate_transaction(|conn| {
                    check_owner(conn, &key, &owner)?;
                    // The foreign key cascades too; deleting explicitly keeps
                    // this correct even on a connection without foreign keys.
                    diesel::delete(messages::table.filter(messages::conversation_id.eq(&key))).execute(conn)?;
                    diesel::delete(conversations::table.find(&key)).execute(conn)?;
                    Ok::<_, AccessError>(())
                })
            })
            .await?)
    }
}
