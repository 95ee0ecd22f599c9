"""Parley's POST /api/v1/chatkit against the reference: the `openai-chatkit`
package (pinned in requirements.txt).

Every request is built with the package's request models; every JSON answer
and every streamed event is parsed with its models. Then, for a scripted
conversation, the reference `ChatKitServer` (in-memory store, a `respond`
replaying the model output Parley produced) and Parley run side by side: the
event types come in the same order and the items have the same shapes (ids,
times and values aside).

Usage: python check.py BASE_URL
"""

from __future__ import annotations

import asyncio
import json
import sys
import urllib.error
import urllib.request
import uuid
from datetime import datetime
from typing import Any, AsyncIterator

from pydantic import TypeAdapter

from chatkit.actions import Action
from chatkit.server import ChatKitServer, StreamingResult
from chatkit.store import NotFoundError, Store
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageContentPartAdded,
    AssistantMessageContentPartDone,
    AssistantMessageContentPartTextDelta,
    AssistantMessageItem,
    AttachmentCreateParams,
    AttachmentsCreateReq,
    CustomTask,
    InferenceOptions,
    InputTranscribeParams,
    InputTranscribeReq,
    ItemFeedbackParams,
    ItemsFeedbackReq,
    ItemsListParams,
    ItemsListReq,
    Page,
    StreamOptions,
    Thread,
    ThreadAddUserMessageParams,
    ThreadCreateParams,
    ThreadCustomActionParams,
    ThreadDeleteParams,
    ThreadGetByIdParams,
    ThreadItem,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadItemUpdatedEvent,
    ThreadListParams,
    ThreadMetadata,
    ThreadsAddUserMessageReq,
    ThreadsCreateReq,
    ThreadsCustomActionReq,
    ThreadsDeleteReq,
    ThreadsGetByIdReq,
    ThreadsListReq,
    ThreadStreamEvent,
    ThreadsUpdateReq,
    ThreadsRetryAfterItemReq,
    ThreadRetryAfterItemParams,
    ThreadUpdateParams,
    UserMessageInput,
    UserMessageTextContent,
    Workflow,
    WorkflowItem,
    WorkflowTaskAdded,
)

EVENTS = TypeAdapter(ThreadStreamEvent)
THREADS = TypeAdapter(Page[Thread])
ITEMS = TypeAdapter(Page[ThreadItem])
BASE = sys.argv[1].rstrip("/")
checks = 0


def check(condition: bool, what: str) -> None:
    global checks
    checks += 1
    if not condition:
        raise SystemExit(f"FAILED: {what}")


def http(method: str, path: str, body: bytes | None, token: str | None) -> tuple[int, str, bytes]:
    request = urllib.request.Request(BASE + path, data=body, method=method)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers.get("content-type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("content-type", ""), error.read()


def register(name: str) -> str:
    email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
    body = json.dumps({"email": email, "password": "chatkit-password", "name": name}).encode()
    status, _, data = http("POST", "/api/v1/auth/register", body, None)
    check(status == 201, f"register {name}: {status} {data!r}")
    return json.loads(data)["data"]["access_token"]


def chatkit(request: Any, token: str, **dump: Any) -> tuple[int, str, bytes]:
    """Sends a request built with the package's models, as the component would."""
    return http("POST", "/api/v1/chatkit", request.model_dump_json(**dump).encode(), token)


def events_of(status: int, content_type: str, data: bytes) -> list[Any]:
    check(status == 200, f"a stream answers 200, got {status}: {data[:300]!r}")
    check(content_type.startswith("text/event-stream"), f"a stream is text/event-stream, got {content_type}")
    events = []
    for block in data.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = block.split("\n")
        check(all(line.startswith("data: ") for line in lines), f"only data lines: {block!r}")
        events.append(EVENTS.validate_json(lines[0][len("data: "):]))
    return events


def message_input(text: str) -> UserMessageInput:
    return UserMessageInput(
        content=[UserMessageTextContent(text=text)], attachments=[], inference_options=InferenceOptions()
    )


def raw_events(data: bytes) -> list[dict]:
    return [json.loads(block[len("data: "):]) for block in data.decode().split("\n\n") if block.strip()]


# --- 1. Every request built and every answer parsed with the package's models ---


def protocol(token: str, other: str) -> tuple[str, list[dict]]:
    status, content_type, data = chatkit(
        ThreadsCreateReq(params=ThreadCreateParams(input=message_input("add a task to buy milk"))), token
    )
    events = events_of(status, content_type, data)
    kinds = [event.type for event in events]
    check(kinds[0] == "thread.created", f"a new thread starts with thread.created: {kinds}")
    thread_id = events[0].thread.id
    check(events[0].thread.title == "add a task to buy milk", "titled from the first message")
    check(kinds[1] == "thread.item.done" and events[1].item.type == "user_message", f"user message: {kinds}")
    check("stream_options" in kinds, f"stream options: {kinds}")
    deltas = [
        e for e in events if e.type == "thread.item.updated" and e.update.type == "assistant_message.content_part.text_delta"
    ]
    check(len(deltas) > 0, f"text deltas: {kinds}")
    done = [e.item for e in events if e.type == "thread.item.done"]
    workflows = [item for item in done if item.type == "workflow"]
    check(len(workflows) == 1 and workflows[0].workflow.tasks[0].title.startswith("add_task"), "a workflow item per tool run")
    replies = [item for item in done if item.type == "assistant_message"]
    check(len(replies) == 1 and "buy milk" in replies[0].content[0].text, f"the reply: {replies}")
    first = raw_events(data)

    # The same request without null fields parses too.
    status, content_type, data = chatkit(
        ThreadsAddUserMessageReq(params=ThreadAddUserMessageParams(thread_id=thread_id, input=message_input("list my tasks"))),
        token,
        exclude_none=True,
    )
    events = events_of(status, content_type, data)
    check(events[0].type == "thread.item.done" and events[0].item.type == "user_message", "no thread.created on an old thread")

    # threads.get_by_id: a Thread with its items, oldest first.
    status, _, data = chatkit(ThreadsGetByIdReq(params=ThreadGetByIdParams(thread_id=thread_id)), token)
    check(status == 200, f"get_by_id: {status} {data!r}")
    thread = Thread.model_validate_json(data)
    ThreadMetadata.model_validate_json(data)
    kinds = [item.type for item in thread.items.data]
    check(kinds == ["user_message", "workflow", "assistant_message", "user_message", "workflow", "assistant_message"], f"items: {kinds}")
    check(thread.items.data[2].id == replies[0].id, "a streamed item keeps its id once stored")

    # items.list, both orders, paged.
    status, _, data = chatkit(ItemsListReq(params=ItemsListParams(thread_id=thread_id, limit=4, order="asc")), token)
    page = ITEMS.validate_json(data)
    check(status == 200 and len(page.data) == 4 and page.has_more and page.after, f"items page 1: {data!r}")
    status, _, data = chatkit(
        ItemsListReq(params=ItemsListParams(thread_id=thread_id, limit=4, order="asc", after=page.after)), token
    )
    rest = ITEMS.validate_json(data)
    check(len(rest.data) == 2 and not rest.has_more, f"items page 2: {data!r}")
    status, _, data = chatkit(ItemsListReq(params=ItemsListParams(thread_id=thread_id)), token)
    newest = ITEMS.validate_json(data)
    check(newest.data[0].type == "assistant_message" and len(newest.data) == 6, "desc: newest first")

    # threads.list: Page[Thread].
    for order in ("desc", "asc"):
        status, _, data = chatkit(ThreadsListReq(params=ThreadListParams(limit=10, order=order)), token)
        threads = THREADS.validate_json(data)
        check(status == 200 and thread_id in [t.id for t in threads.data], f"threads.list {order}: {data!r}")

    # threads.update renames; the other doors see it.
    status, _, data = chatkit(ThreadsUpdateReq(params=ThreadUpdateParams(thread_id=thread_id, title="Groceries")), token)
    check(status == 200 and Thread.model_validate_json(data).title == "Groceries", f"update: {data!r}")

    # threads.retry_after_item: a new reply to the last user message replaces the old one.
    status, content_type, data = chatkit(
        ThreadsRetryAfterItemReq(params=ThreadRetryAfterItemParams(thread_id=thread_id, item_id=thread.items.data[3].id)),
        token,
    )
    events = events_of(status, content_type, data)
    check(events[0].type == "stream_options" and events[-1].type == "thread.item.done", f"retry: {[e.type for e in events]}")
    status, _, data = chatkit(ItemsListReq(params=ItemsListParams(thread_id=thread_id, order="asc")), token)
    after_retry = ITEMS.validate_json(data)
    check(len(after_retry.data) == 6 and after_retry.data[5].id != thread.items.data[5].id, "the old reply is replaced")

    # items.feedback answers {}.
    status, _, data = chatkit(
        ItemsFeedbackReq(params=ItemFeedbackParams(thread_id=thread_id, item_ids=[replies[0].id], kind="positive")), token
    )
    check(status == 200 and json.loads(data) == {}, f"feedback: {status} {data!r}")

    # Another user's thread is refused; an unknown one is not found.
    status, _, data = chatkit(ThreadsGetByIdReq(params=ThreadGetByIdParams(thread_id=thread_id)), other)
    check(status == 403 and json.loads(data)["error"]["code"] == "FORBIDDEN", f"another user's thread: {status}")
    status, _, data = chatkit(ThreadsGetByIdReq(params=ThreadGetByIdParams(thread_id=str(uuid.uuid4()))), token)
    check(status == 404, f"unknown thread: {status}")

    # What Parley does not offer is refused with an error the component shows.
    refused = [
        AttachmentsCreateReq(params=AttachmentCreateParams(name="a.png", size=3, mime_type="image/png")),
        InputTranscribeReq(params=InputTranscribeParams(audio_base64="AAAA", mime_type="audio/webm")),
    ]
    for request in refused:
        status, _, data = chatkit(request, token)
        check(status == 400 and json.loads(data)["error"]["code"] == "NOT_SUPPORTED", f"{request.type}: {status} {data!r}")
    status, _, data = http("POST", "/api/v1/chatkit", b'{"type": "threads.teleport", "params": {}}', token)
    check(status == 400, f"unknown type: {status}")
    status, _, _ = http("POST", "/api/v1/chatkit", ThreadsListReq(params=ThreadListParams()).model_dump_json().encode(), None)
    check(status == 401, "no token: 401")
    return thread_id, first


# --- 2. The same conversation through the other doors ---


def doors(token: str, thread_id: str) -> None:
    status, _, data = http("GET", "/api/v1/chat/conversations", None, token)
    listed = {c["id"]: c["title"] for c in json.loads(data)["data"]}
    check(listed.get(thread_id) == "Groceries", f"/chat/conversations shows the thread: {listed}")
    status, _, data = http("GET", f"/api/v1/chatkit/sessions/{thread_id}", None, token)
    check(status == 200 and json.loads(data)["data"]["title"] == "Groceries", "/chatkit/sessions shows it")
    status, _, data = http("POST", "/api/v1/chat", json.dumps({"message": "add a task to call mom"}).encode(), token)
    made = json.loads(data)["data"]["conversation_id"]
    status, _, data = chatkit(ThreadsGetByIdReq(params=ThreadGetByIdParams(thread_id=made)), token)
    thread = Thread.model_validate_json(data)
    check(thread.title == "add a task to call mom" and len(thread.items.data) == 3, f"a /chat conversation is a thread: {data!r}")
    status, _, data = chatkit(ThreadsDeleteReq(params=ThreadDeleteParams(thread_id=made)), token)
    check(status == 200 and json.loads(data) == {}, "threads.delete answers {}")
    status, _, _ = http("GET", f"/api/v1/chat/conversations/{made}", None, token)
    check(status == 404, "deleted through the protocol, gone from /chat")


# --- 3. Side by side with the reference ChatKitServer ---


class MemoryStore(Store[dict]):
    def __init__(self) -> None:
        self.threads: dict[str, ThreadMetadata] = {}
        self.items: dict[str, list[ThreadItem]] = {}

    async def load_thread(self, thread_id, context):
        if thread_id not in self.threads:
            raise NotFoundError(thread_id)
        return self.threads[thread_id]

    async def save_thread(self, thread, context):
        self.threads[thread.id] = thread
        self.items.setdefault(thread.id, [])

    async def load_thread_items(self, thread_id, after, limit, order, context):
        items = list(self.items.get(thread_id, []))
        if order == "desc":
            items.reverse()
        start = next((i + 1 for i, item in enumerate(items) if item.id == after), 0) if after else 0
        shown = items[start : start + limit]
        has_more = start + limit < len(items)
        return Page(data=shown, has_more=has_more, after=shown[-1].id if has_more and shown else None)

    async def save_attachment(self, attachment, context):
        raise NotImplementedError

    async def load_attachment(self, attachment_id, context):
        raise NotImplementedError

    async def delete_attachment(self, attachment_id, context):
        raise NotImplementedError

    async def load_threads(self, limit, after, order, context):
        return Page(data=list(self.threads.values())[:limit])

    async def add_thread_item(self, thread_id, item, context):
        self.items.setdefault(thread_id, []).append(item)

    async def save_item(self, thread_id, item, context):
        items = self.items.setdefault(thread_id, [])
        for index, existing in enumerate(items):
            if existing.id == item.id:
                items[index] = item
                return
        items.append(item)

    async def load_item(self, thread_id, item_id, context):
        return next(item for item in self.items[thread_id] if item.id == item_id)

    async def delete_thread(self, thread_id, context):
        self.threads.pop(thread_id, None)
        self.items.pop(thread_id, None)

    async def delete_thread_item(self, thread_id, item_id, context):
        self.items[thread_id] = [item for item in self.items[thread_id] if item.id != item_id]


class Replaying(ChatKitServer[dict]):
    """Replays a scripted model output: ("tool", CustomTask) and ("text", delta) steps."""

    def __init__(self, script: list[tuple[str, Any]]) -> None:
        super().__init__(MemoryStore())
        self.script = script

    def get_stream_options(self, thread, context):
        return StreamOptions(allow_cancel=False)

    async def respond(self, thread, input_user_message, context) -> AsyncIterator[ThreadStreamEvent]:
        text: AssistantMessageItem | None = None
        flow: WorkflowItem | None = None

        def new_id(kind: str) -> str:
            return self.store.generate_item_id(kind, thread, context)

        for kind, step in self.script:
            if kind == "tool":
                if text is not None:
                    yield ThreadItemUpdatedEvent(item_id=text.id, update=AssistantMessageContentPartDone(content_index=0, content=text.content[0]))
                    yield ThreadItemDoneEvent(item=text)
                    text = None
                if flow is None:
                    flow = WorkflowItem(id=new_id("workflow"), thread_id=thread.id, created_at=datetime.now(), workflow=Workflow(type="custom", tasks=[]))
                    yield ThreadItemAddedEvent(item=flow.model_copy(deep=True))
                yield ThreadItemUpdatedEvent(item_id=flow.id, update=WorkflowTaskAdded(task_index=len(flow.workflow.tasks), task=step))
                flow.workflow.tasks.append(step)
            else:
                if flow is not None:
                    yield ThreadItemDoneEvent(item=flow)
                    flow = None
                if text is None:
                    text = AssistantMessageItem(id=new_id("message"), thread_id=thread.id, created_at=datetime.now(), content=[])
                    yield ThreadItemAddedEvent(item=text.model_copy(deep=True))
                    yield ThreadItemUpdatedEvent(item_id=text.id, update=AssistantMessageContentPartAdded(content_index=0, content=AssistantMessageContent(text="")))
                    text.content.append(AssistantMessageContent(text=""))
                yield ThreadItemUpdatedEvent(item_id=text.id, update=AssistantMessageContentPartTextDelta(content_index=0, delta=step))
                text.content[0].text += step
        if text is not None:
            yield ThreadItemUpdatedEvent(item_id=text.id, update=AssistantMessageContentPartDone(content_index=0, content=text.content[0]))
            yield ThreadItemDoneEvent(item=text)
        if flow is not None:
            yield ThreadItemDoneEvent(item=flow)


def script_of(parley: list[dict]) -> list[tuple[str, Any]]:
    """The model output Parley streamed: its tool runs and its text deltas."""
    script: list[tuple[str, Any]] = []
    for event in parley:
        if event["type"] != "thread.item.updated":
            continue
        update = event["update"]
        if update["type"] == "workflow.task.added":
            script.append(("tool", CustomTask.model_validate(update["task"])))
        elif update["type"] == "assistant_message.content_part.text_delta":
            script.append(("text", update["delta"]))
    return script


IGNORED = {"id", "thread_id", "item_id", "created_at", "title"}


def shape(value: Any) -> Any:
    """A JSON value's structure: keys and types, ids, times and titles aside.
    (Parley titles a thread from its first message, as its other doors do;
    the reference leaves a new thread untitled.)"""
    if isinstance(value, dict):
        return {key: shape(inner) for key, inner in sorted(value.items()) if key not in IGNORED}
    if isinstance(value, list):
        return [shape(inner) for inner in value]
    return type(value).__name__


async def reference_events(script: list[tuple[str, Any]], request: bytes) -> list[dict]:
    result = await Replaying(script).process(request, {})
    check(isinstance(result, StreamingResult), "the reference streams threads.create")
    data = b"".join([chunk async for chunk in result])
    return raw_events(data)


def side_by_side(parley: list[dict]) -> None:
    request = ThreadsCreateReq(params=ThreadCreateParams(input=message_input("add a task to buy milk"))).model_dump_json()
    reference = asyncio.run(reference_events(script_of(parley), request.encode()))
    ours = [event["type"] for event in parley]
    theirs = [event["type"] for event in reference]
    check(ours == theirs, f"the same event types in the same order:\n parley    {ours}\n reference {theirs}")
    for mine, its in zip(parley, reference):
        check(shape(mine) == shape(its), f"the same shape for {mine['type']}:\n parley    {shape(mine)}\n reference {shape(its)}")


# --- 4. A deletion waits for approval: a widget, confirmed by a custom action ---


def plan_widget(token: str) -> None:
    body = json.dumps({"title": "Buy milk"}).encode()
    status, _, data = http("POST", "/api/v1/tasks", body, token)
    check(status == 201, f"a task to delete: {status} {data!r}")
    status, content_type, data = chatkit(
        ThreadsCreateReq(params=ThreadCreateParams(input=message_input("delete Buy milk"))), token
    )
    events = events_of(status, content_type, data)
    widgets = [e.item for e in events if e.type == "thread.item.done" and e.item.type == "widget"]
    check(len(widgets) == 1, f"one plan widget (WidgetItem parses): {[e.type for e in events]}")
    card = widgets[0].widget
    check(card.type == "Card" and card.confirm is not None and card.cancel is not None, "a Card with Confirm and Cancel")
    confirm = card.confirm["action"]
    request = ThreadsCustomActionReq(
        params=ThreadCustomActionParams(
            thread_id=events[0].thread.id,
            item_id=widgets[0].id,
            action=Action(type=confirm.type, payload=confirm.payload),
        )
    )
    answer = events_of(*chatkit(request, token))
    check([e.type for e in answer] == ["thread.item.done"], f"the confirm answers one item: {answer}")
    check(answer[0].item.type == "assistant_message", "saying what was done")
    status, _, data = http("GET", "/api/v1/tasks", None, token)
    check(status == 200 and json.loads(data)["data"] == [], f"the task is deleted once confirmed: {data!r}")


def main() -> None:
    token, other = register("ChatKit"), register("Other")
    thread_id, first = protocol(token, other)
    doors(token, thread_id)
    side_by_side(first)
    plan_widget(register("Plans"))
    print(f"chatkit reference check: {checks} checks passed (openai-chatkit models, side by side with ChatKitServer)")


if __name__ == "__main__":
    main()
