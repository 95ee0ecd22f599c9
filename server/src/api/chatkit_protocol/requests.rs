//! The ChatKit requests Parley takes, as the `openai-chatkit` package
//! defines them (`chatkit/types.py`), documented as one `oneOf` on `type`.
//!
//! The schema says exactly what is accepted: a message is one `input_text`
//! part without attachments; attachments, transcription, structured input
//! and synchronous actions are not in it (they answer `NOT_SUPPORTED`).

use std::collections::HashMap;

use poem_openapi::{Enum, Object, Union};
use serde_json::Value;
use uuid::Uuid;

use crate::api::schema::{Bounded, CursorText, Text};

/// `limit` of a list: 1 to 100.
pub type ParamsLimit = Bounded<1, 100>;

/// Integration metadata; accepted and ignored.
pub type Metadata = Option<HashMap<String, Value>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename = "ChatKitInputTextType")]
pub enum InputTextType {
    #[oai(rename = "input_text")]
    InputText,
}

/// One part of a user message: text.
#[derive(Debug, Object)]
#[oai(rename = "ChatKitInputText")]
pub struct InputText {
    #[oai(rename = "type")]
    pub kind: InputTextType,
    /// 1 to 2000 characters after trimming.
    pub text: Text<1, 2000, true>,
}

#[derive(Debug, Object)]
#[oai(rename = "ChatKitToolChoice")]
pub struct ToolChoice {
    pub id: String,
}

/// Model and tool choice of the component; accepted and ignored (Parley's
/// assistant has one model and chooses its tools itself).
#[derive(Debug, Object)]
#[oai(rename = "ChatKitInferenceOptions")]
pub struct InferenceOptions {
    pub tool_choice: Option<ToolChoice>,
    pub model: Option<String>,
}

/// What the composer sends.
#[derive(Debug, Object)]
#[oai(rename = "ChatKitUserMessageInput")]
pub struct UserMessageInput {
    /// Exactly one `input_text` part.
    #[oai(validator(min_items = 1, max_items = 1))]
    pub content: Vec<InputText>,
    /// Attachment ids: Parley takes none.
    #[oai(validator(max_items = 0))]
    pub attachments: Vec<String>,
    /// Accepted and ignored.
    pub quoted_text: Option<Text<0, 0>>,
    pub inference_options: InferenceOptions,
}

/// `desc` (the default): newest first (threads: most recently updated first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Default)]
#[oai(rename = "ChatKitOrder")]
pub enum Order {
    #[oai(rename = "asc")]
    Asc,
    #[default]
    #[oai(rename = "desc")]
    Desc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename = "ChatKitFeedbackKind")]
pub enum FeedbackKind {
    #[oai(rename = "positive")]
    Positive,
    #[oai(rename = "negative")]
    Negative,
}

#[derive(Debug, Object)]
#[oai(rename = "ChatKitThreadCreateParams")]
pub struct CreateParams {
    pub input: UserMessageInput,
}

#[derive(Debug, Object)]
#[oai(rename = "ChatKitAddUserMessageParams")]
pub struct AddUserMessageParams {
    pub thread_id: Uuid,
    pub input: UserMessageInput,
}

#[derive(Debug, Object)]
#[oai(rename = "ChatKitAddClientToolOutputParams")]
pub struct AddClientToolOutputParams {
    pub thread_id: Uuid,
    /// Any JSON value.
    pub result: Option<Value>,
}

#[derive(Debug, Object)]
#[oai(rename = "ChatKitRetryAfterItemParams")]
pub struct RetryAfterItemParams {
    pub thread_id: Uuid,
    pub item_id: Text<0, 0>,
}

#[derive(Debug, Object)]
#[oai(rename = "ChatKitAction")]
pub struct Action {
    #[oai(rename = "type")]
    pub kind: String,
    pub payload: Option<Value>,
}

#[derive(Debug, Object)]
#[oai(rename = "ChatKitCustomActionParams")]
pub struct CustomActionParams {
    pub thread_id: Uuid,
    pub item_id: Option<String>,
    pub action: Action,
}

#[derive(Debug, Object)]
#[oai(rename = "ChatKitThreadIdParams")]
pub struct ThreadIdParams {
    pub thread_id: Uuid,
}

#[derive(Debug, Object)]
#[oai(rename = "ChatKitThreadListParams")]
pub struct ThreadListParams {
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<ParamsLimit>,
    pub order: Option<Order>,
    /// `after` of the previous page.
    pub after: Option<CursorText>,
}

#[derive(Debug, Object)]
#[oai(rename = "ChatKitItemsListParams")]
pub struct ItemsListParams {
    pub thread_id: Uuid,
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<ParamsLimit>,
    pub order: Option<Order>,
    /// An item id: the page starts after it.
    pub after: Option<Text<0, 0>>,
}

#[derive(Debug, Object)]
#[oai(rename = "ChatKitItemFeedbackParams")]
pub struct FeedbackParams {
    pub thread_id: Uuid,
    #[oai(validator(min_items = 1, max_items = 100))]
    pub item_ids: Vec<Text<1, 200>>,
    pub kind: FeedbackKind,
}

#[derive(Debug, Object)]
#[oai(rename = "ChatKitThreadUpdateParams")]
pub struct UpdateParams {
    pub thread_id: Uuid,
    /// 1 to 60 characters after trimming.
    pub title: Text<1, 60, true>,
}

macro_rules! request {
    ($($name:ident($params:ty) = $schema:literal;)+) => {
        $(
            #[derive(Debug, Object)]
            #[oai(rename = $schema)]
            pub struct $name {
                pub params: $params,
                pub metadata: Metadata,
            }
        )+
    };
}

request! {
    CreateReq(CreateParams) = "ChatKitThreadsCreate";
    AddUserMessageReq(AddUserMessageParams) = "ChatKitThreadsAddUserMessage";
    AddClientToolOutputReq(AddClientToolOutputParams) = "ChatKitThreadsAddClientToolOutput";
    RetryAfterItemReq(RetryAfterItemParams) = "ChatKitThreadsRetryAfterItem";
    CustomActionReq(CustomActionParams) = "ChatKitThreadsCustomAction";
    GetByIdReq(ThreadIdParams) = "ChatKitThreadsGetById";
    ListReq(ThreadListParams) = "ChatKitThreadsList";
    ItemsListReq(ItemsListParams) = "ChatKitItemsList";
    FeedbackReq(FeedbackParams) = "ChatKitItemsFeedback";
    UpdateReq(UpdateParams) = "ChatKitThreadsUpdate";
    DeleteReq(ThreadIdParams) = "ChatKitThreadsDelete";
}

/// A ChatKit request: `type` names it, `params` are its parameters.
#[derive(Debug, Union)]
#[oai(rename = "ChatKitRequest", discriminator_name = "type", one_of)]
pub enum ChatKitRequest {
    #[oai(mapping = "threads.create")]
    Create(CreateReq),
    #[oai(mapping = "threads.add_user_message")]
    AddUserMessage(AddUserMessageReq),
    #[oai(mapping = "threads.add_client_tool_output")]
    AddClientToolOutput(AddClientToolOutputReq),
    #[oai(mapping = "threads.retry_after_item")]
    RetryAfterItem(RetryAfterItemReq),
    #[oai(mapping = "threads.custom_action")]
    CustomAction(CustomActionReq),
    #[oai(mapping = "threads.get_by_id")]
    GetById(GetByIdReq),
    #[oai(mapping = "threads.list")]
    List(ListReq),
    #[oai(mapping = "items.list")]
    ItemsList(ItemsListReq),
    #[oai(mapping = "items.feedback")]
    Feedback(FeedbackReq),
    #[oai(mapping = "threads.update")]
    Update(UpdateReq),
    #[oai(mapping = "threads.delete")]
    Delete(DeleteReq),
}

/// Request types of the protocol Parley does not offer.
pub const NOT_SUPPORTED: &[&str] = &[
    "attachments.create",
    "attachments.delete",
    "input.transcribe",
    "threads.add_structured_input",
    "threads.sync_custom_action",
];
