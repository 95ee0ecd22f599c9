"""A user's journey through the Python client that openapi-python-client
generates from the server's OpenAPI document (imported as `python_client`).

Usage: python python_journey.py BASE_URL  (with the generated package on PYTHONPATH)
"""

from __future__ import annotations

import json
import sys
import uuid

from python_client import AuthenticatedClient, Client
from python_client.api.auth import get_me, login, register
from python_client.api.chat import chat, delete_conversation, get_conversation, list_conversations
from python_client.api.chat_kit import (
    create_chatkit_session,
    create_chatkit_thread,
    delete_chatkit_session,
    get_chatkit_session,
    list_chatkit_sessions,
)
from python_client.api.health import health
from python_client.api.sessions import (
    close_session,
    create_session,
    get_session,
    list_session_messages,
    list_sessions,
)
from python_client.api.tasks import complete_task, create_task, delete_task, get_task, list_tasks, update_task
from python_client.models import (
    ChatBody,
    CreateSessionBody,
    CreateTaskBody,
    ErrorEnvelope,
    LoginBody,
    PriorityDto,
    RegisterBody,
    UpdateTaskBody,
)
from python_client.types import UNSET


def step(text: str) -> None:
    print(f"  - {text}", flush=True)


def expect(response, status: int):
    """The parsed body of `response`, which must have `status`."""
    if response.status_code != status:
        raise SystemExit(f"expected {status}, got {response.status_code}: {response.content[:500]!r}")
    if response.parsed is None:
        raise SystemExit(f"{status} answer the client could not parse: {response.content[:500]!r}")
    return response.parsed


def main(base: str) -> None:
    anonymous = Client(base_url=base, raise_on_unexpected_status=True)
    assert expect(health.sync_detailed(client=anonymous), 200).status == "healthy"
    step("health: healthy")

    email = f"journey-{uuid.uuid4().hex[:12]}@example.com"
    password = "journey-password-1"
    registered = expect(
        register.sync_detailed(client=anonymous, body=RegisterBody(email=email, password=password, name="Journey")),
        201,
    )
    assert registered.data.user.email == email
    assert registered.data.token_type == "Bearer"
    step(f"register: {registered.data.user.id}")

    taken = register.sync_detailed(client=anonymous, body=RegisterBody(email=email.upper(), password=password, name="J"))
    assert taken.status_code == 409 and isinstance(taken.parsed, ErrorEnvelope), taken.content
    assert taken.parsed.error.code == "EMAIL_TAKEN"
    step("register again: 409 EMAIL_TAKEN, parsed as ErrorEnvelope")

    logged_in = expect(login.sync_detailed(client=anonymous, body=LoginBody(email=email, password=password)), 200)
    client = AuthenticatedClient(base_url=base, token=logged_in.data.access_token, raise_on_unexpected_status=True)
    wrong = login.sync_detailed(client=anonymous, body=LoginBody(email=email, password="not-the-password"))
    assert wrong.status_code == 401 and wrong.parsed.error.code == "INVALID_CREDENTIALS"
    step("login: token; a wrong password is 401 INVALID_CREDENTIALS")

    me = expect(get_me.sync_detailed(client=client), 200)
    assert me.data.email == email and me.data.name == "Journey"
    step("me: the same user")

    # Tasks: create five, filter, page through them with the cursor.
    created = []
    for n in range(5):
        body = CreateTaskBody(
            title=f"Journey task {n}",
            description=f"number {n}",
            priority=PriorityDto.HIGH if n % 2 else PriorityDto.LOW,
        )
        task = expect(create_task.sync_detailed(client=client, body=body), 201).data
        assert task.completed is False and task.completed_at is None and task.due_at is None
        created.append(task)
    step(f"create: {len(created)} tasks")

    seen, cursor, pages = [], UNSET, 0
    while True:
        page = expect(list_tasks.sync_detailed(client=client, limit=2, cursor=cursor), 200)
        pages += 1
        assert page.meta.total == 5
        seen.extend(task.id for task in page.data)
        if page.meta.next_cursor is None:
            break
        cursor = page.meta.next_cursor
    assert pages == 3 and sorted(seen) == sorted(task.id for task in created), (pages, seen)
    step(f"list: {pages} pages of at most 2, newest first, every task once")

    found = expect(list_tasks.sync_detailed(client=client, q="TASK 3"), 200)
    assert [t.title for t in found.data] == ["Journey task 3"], found.data
    step("list with q: the matching task")

    first = created[0]
    fetched = expect(get_task.sync_detailed(first.id, client=client), 200).data
    assert fetched.title == first.title and fetched.priority == PriorityDto.LOW
    step("get: the task")

    update = UpdateTaskBody(title="Journey task 0, renamed", priority=PriorityDto.MEDIUM)
    updated = expect(update_task.sync_detailed(first.id, client=client, body=update), 200).data
    assert updated.title == "Journey task 0, renamed" and updated.priority == PriorityDto.MEDIUM
    step("update: title and priority replaced")

    done = expect(complete_task.sync_detailed(first.id, client=client), 200).data
    assert done.completed is True and done.completed_at is not None
    pending = expect(list_tasks.sync_detailed(client=client, completed=False), 200)
    completed = expect(list_tasks.sync_detailed(client=client, completed=True), 200)
    assert pending.meta.total == 4 and [t.id for t in completed.data] == [first.id]
    step("complete: completed_at set; completed=true/false filter")

    deleted = expect(delete_task.sync_detailed(first.id, client=client), 200).data
    assert deleted.deleted is True and deleted.id == first.id
    gone = get_task.sync_detailed(first.id, client=client)
    assert gone.status_code == 404 and gone.parsed.error.code == "TASK_NOT_FOUND"
    step("delete: deleted, then 404 TASK_NOT_FOUND")

    # Chat with the offline assistant, then read the conversation back.
    reply = expect(chat.sync_detailed(client=client, body=ChatBody(message="add a task called water the plants")), 200)
    conversation_id = reply.data.conversation_id
    assert reply.data.message.role == "assistant"
    calls = reply.data.message.tool_calls
    assert calls and calls[0].function.name == "add_task", calls
    assert json.loads(calls[0].function.arguments)["title"].lower() == "water the plants"
    step(f"chat: the assistant called {calls[0].function.name}")

    again = expect(
        chat.sync_detailed(client=client, body=ChatBody(message="list my tasks", conversation_id=uuid.UUID(conversation_id))),
        200,
    )
    assert again.data.conversation_id == conversation_id
    conversation = expect(get_conversation.sync_detailed(conversation_id, client=client), 200).data
    assert [m.role for m in conversation.messages] == ["user", "assistant", "user", "assistant"]
    assert any(t.title.lower() == "water the plants" for t in expect(list_tasks.sync_detailed(client=client), 200).data)
    conversations = expect(list_conversations.sync_detailed(client=client), 200)
    assert conversation_id in [c.id for c in conversations.data]
    step("conversation: four messages, listed; the assistant's task exists")

    # ChatKit: the conversation is a session too.
    kit = expect(create_chatkit_session.sync_detailed(client=client), 201).data
    assert kit.thread_id == kit.id
    thread = expect(create_chatkit_thread.sync_detailed(kit.id, client=client), 200).data
    assert thread.thread_id == kit.id
    stream = client.get_httpx_client().post(f"/api/v1/chatkit/sessions/{kit.id}/messages", json={"text": "list my tasks"})
    assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream"), stream.text
    events = [line.removeprefix("event: ") for line in stream.text.splitlines() if line.startswith("event: ")]
    assert events[0] == "message.created" and events[-2:] == ["message.completed", "done"], events
    sessions = expect(list_chatkit_sessions.sync_detailed(client=client), 200)
    assert {kit.id, conversation_id} <= {s.id for s in sessions.data}
    session = expect(get_chatkit_session.sync_detailed(kit.id, client=client), 200).data
    assert [m.role for m in session.messages] == ["user", "assistant"]
    expect(delete_chatkit_session.sync_detailed(kit.id, client=client), 200)
    missing = get_chatkit_session.sync_detailed(kit.id, client=client)
    assert missing.status_code == 404 and missing.parsed.error.code == "SESSION_NOT_FOUND"
    expect(delete_conversation.sync_detailed(conversation_id, client=client), 200)
    step(f"chatkit: session, thread, {len(events)} SSE events, list, get, delete")

    # Séance sessions.
    room = expect(create_session.sync_detailed(client=client, body=CreateSessionBody(name="Journey circle", max_users=4)), 201).data
    assert room.is_active and room.max_users == 4 and room.closed_at is None and room.host_id == me.data.id
    assert expect(get_session.sync_detailed(room.id, client=client), 200).data.name == "Journey circle"
    assert room.id in [s.id for s in expect(list_sessions.sync_detailed(client=client, limit=100), 200).data]
    messages = expect(list_session_messages.sync_detailed(room.id, client=client), 200)
    assert messages.data == [] and messages.meta.next_cursor is None and messages.meta.total == 0
    closed = expect(close_session.sync_detailed(room.id, client=client), 200).data
    assert closed.is_active is False and closed.closed_at is not None
    step("séance: create, get, list, messages, close")

    print("python journey: ok")


if __name__ == "__main__":
    main(sys.argv[1].rstrip("/"))
