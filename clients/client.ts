// A small typed client over the types openapi-typescript generates from the
// server's OpenAPI document. CI type-checks it (`tsc --noEmit`): a change of
// the document that breaks a client shows here as a type error.
import type { components, operations, paths } from "./generated/parley";

type Schemas = components["schemas"];
export type Task = Schemas["TaskDto"];
export type User = Schemas["UserDto"];
export type Priority = Schemas["PriorityDto"];
export type ErrorEnvelope = Schemas["ErrorEnvelope"];

type Json<Op, Status extends number> = Op extends {
  responses: { [S in Status]: { content: { "application/json; charset=utf-8": infer B } } };
}
  ? B
  : never;

export type CreateTaskBody = operations["create_task"]["requestBody"]["content"]["application/json; charset=utf-8"];
export type TaskPage = Json<operations["list_tasks"], 200>;
export type Registered = Json<operations["register"], 201>;
export type TaskQuery = NonNullable<operations["list_tasks"]["parameters"]["query"]>;

// Every path the client calls must be in the document.
const TASKS: keyof paths = "/api/v1/tasks";
const REGISTER: keyof paths = "/api/v1/auth/register";

export class ParleyClient {
  constructor(
    private readonly base: string,
    private token?: string,
  ) {}

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const response = await fetch(this.base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await response.json()) as T | ErrorEnvelope;
    if (!response.ok) {
      const error = json as ErrorEnvelope;
      throw new Error(`${response.status} ${error.error.code}: ${error.error.message}`);
    }
    return json as T;
  }

  async register(email: string, password: string, name: string): Promise<User> {
    const registered = await this.call<Registered>("POST", REGISTER, { email, password, name });
    this.token = registered.data.access_token;
    return registered.data.user;
  }

  async createTask(body: CreateTaskBody): Promise<Task> {
    const created = await this.call<Json<operations["create_task"], 201>>("POST", TASKS, body);
    return created.data;
  }

  async listTasks(query: TaskQuery = {}): Promise<{ tasks: Task[]; next: string | null; total: number }> {
    const params = new URLSearchParams();
    if (query.completed !== undefined) params.set("completed", String(query.completed));
    if (query.q !== undefined) params.set("q", query.q);
    if (query.limit !== undefined) params.set("limit", String(query.limit));
    if (query.cursor !== undefined) params.set("cursor", query.cursor);
    const page = await this.call<TaskPage>("GET", `${TASKS}?${params}`);
    // `next_cursor` is nullable in the document: a `string | null`, not a `string`.
    const next: string | null = page.meta.next_cursor;
    return { tasks: page.data, next, total: page.meta.total };
  }
}

export function overdue(task: Task, now: Date): boolean {
  // `due_at` and `completed_at` are nullable: the types force the checks.
  return task.due_at != null && task.completed_at == null && new Date(task.due_at) < now;
}

export const priorities: Priority[] = ["low", "medium", "high"];
