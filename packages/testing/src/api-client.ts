import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from "fastify";

type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/**
 * A browser-like client for `app.inject()`: keeps cookies, echoes the CSRF
 * cookie on mutations like the web app does, or sends a bearer API key.
 */
export class ApiClient {
  readonly cookies = new Map<string, string>();
  bearer: string | undefined;
  /** Send the CSRF header on mutations (turn off to test the protection). */
  csrf = true;
  ip: string;
  readonly app: FastifyInstance;

  constructor(app: FastifyInstance, opts: { bearer?: string; ip?: string } = {}) {
    this.app = app;
    this.bearer = opts.bearer;
    this.ip = opts.ip ?? "127.0.0.1";
  }

  async request(
    method: Method,
    url: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<LightMyRequestResponse> {
    const h: Record<string, string> = { ...headers };
    if (this.bearer) h.authorization = `Bearer ${this.bearer}`;
    if (this.cookies.size) h.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    const csrf = this.cookies.get("__Host-reef_csrf") ?? this.cookies.get("reef_csrf");
    if (this.csrf && csrf && method !== "GET") h["x-csrf-token"] = csrf;
    const opts: InjectOptions = { method, url, headers: h, remoteAddress: this.ip };
    if (body !== undefined) opts.payload = body as NonNullable<InjectOptions["payload"]>;
    const res = await this.app.inject(opts);
    for (const c of res.cookies as { name: string; value: string; expires?: Date; maxAge?: number }[]) {
      const expired = (c.expires && c.expires.getTime() <= Date.now()) || c.maxAge === 0 || c.value === "";
      if (expired) this.cookies.delete(c.name);
      else this.cookies.set(c.name, c.value);
    }
    return res;
  }

  get(url: string) {
    return this.request("GET", url);
  }
  post(url: string, body?: unknown) {
    return this.request("POST", url, body ?? {});
  }
  patch(url: string, body?: unknown) {
    return this.request("PATCH", url, body ?? {});
  }
  delete(url: string, body?: unknown) {
    return this.request("DELETE", url, body);
  }
}

let counter = 0;

/** Signs up a fresh user and returns a client holding their session. */
export async function signUp(app: FastifyInstance, opts: { email?: string; name?: string; ip?: string } = {}) {
  counter += 1;
  const client = new ApiClient(app, opts.ip ? { ip: opts.ip } : {});
  const email = opts.email ?? `user${counter}-${Date.now()}@example.test`;
  const res = await client.post("/api/v1/auth/signup", {
    email,
    password: "correct horse battery",
    name: opts.name ?? `User ${counter}`,
  });
  if (res.statusCode !== 201) throw new Error(`signup failed: ${res.statusCode} ${res.body}`);
  const body = res.json() as { user: { id: string; email: string; platformRole: string }; workspace: { id: string } };
  return { client, user: body.user, workspaceId: body.workspace.id, email, password: "correct horse battery" };
}
