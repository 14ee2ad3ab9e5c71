/**
 * The build service client of the form. Every request carries the form ticket in the
 * `X-Fancy-Env-Ticket` header (never in a URL or browser storage). The event stream is read
 * with fetch() so the header travels, and a dropped stream is resumed with `Last-Event-ID`.
 */
import { SseParser } from "../sse";
import type { BuildEvent, BuildRecord } from "./buildEvents";

export const TICKET_HEADER = "X-Fancy-Env-Ticket";
const TERMINAL: readonly string[] = ["built", "failed", "cancelled"];

export function isTerminal(phase: string): boolean {
  return TERMINAL.includes(phase);
}

/** A refusal by the build service: `reason` is its message, `field` the input it names. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly field: string | null = null,
  ) {
    super(reason);
  }
}

export interface StreamOptions {
  signal?: AbortSignal;
  /** Reconnects in a row without receiving an event before giving up. */
  maxRetries?: number;
  retryDelayMs?: number;
}

type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export class BuilderClient {
  constructor(
    private readonly baseUrl: string,
    private readonly ticket: string,
    private readonly fetchImpl: FetchLike = (i, init) => fetch(i, init),
  ) {}

  url(path: string): string {
    return this.baseUrl.replace(/\/?$/, "/") + path;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { [TICKET_HEADER]: this.ticket, ...extra };
  }

  private async json<T>(path: string, init: RequestInit = {}): Promise<T> {
    const response = await this.fetchImpl(this.url(path), {
      credentials: "same-origin",
      ...init,
      headers: this.headers(init.headers as Record<string, string> | undefined),
    });
    if (!response.ok) throw await apiError(response);
    const text = await response.text();
    return (text ? JSON.parse(text) : {}) as T;
  }

  createBuild(repo: string, ref: string): Promise<BuildRecord> {
    return this.json<BuildRecord>("api/builds", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ repo, ref }),
    });
  }

  cancel(id: string): Promise<unknown> {
    return this.json(`api/builds/${encodeURIComponent(id)}`, { method: "DELETE" });
  }

  async history(repo?: string): Promise<BuildRecord[]> {
    const query = new URLSearchParams({ mine: "1" });
    if (repo) query.set("repo", repo);
    const body = await this.json<unknown>(`api/builds?${query.toString()}`);
    if (Array.isArray(body)) return body as BuildRecord[];
    const builds = (body as { builds?: unknown }).builds;
    return Array.isArray(builds) ? (builds as BuildRecord[]) : [];
  }

  /**
   * Follow a build's events until a terminal phase; resumes after a dropped connection with
   * Last-Event-ID so no line is lost or repeated. Resolves with the terminal event.
   */
  async follow(
    id: string,
    onEvent: (event: BuildEvent) => void,
    options: StreamOptions = {},
  ): Promise<BuildEvent> {
    const { signal, maxRetries = 5, retryDelayMs = 500 } = options;
    const parser = new SseParser();
    let failures = 0;
    for (;;) {
      const got = { count: 0 };
      try {
        const terminal = await this.readStream(id, parser, onEvent, got, signal);
        if (terminal) return terminal;
      } catch (err) {
        if (err instanceof ApiError || signal?.aborted) throw err;
      }
      failures = got.count > 0 ? 1 : failures + 1;
      if (failures > maxRetries) {
        throw new ApiError(0, "Lost the connection to the build service.");
      }
      await sleep(retryDelayMs * failures, signal);
    }
  }

  private async readStream(
    id: string,
    parser: SseParser,
    onEvent: (event: BuildEvent) => void,
    got: { count: number },
    signal?: AbortSignal,
  ): Promise<BuildEvent | null> {
    const headers = this.headers({ Accept: "text/event-stream" });
    if (parser.lastEventId !== null) headers["Last-Event-ID"] = parser.lastEventId;
    const init: RequestInit = { headers, credentials: "same-origin", cache: "no-store" };
    if (signal) init.signal = signal;
    const response = await this.fetchImpl(
      this.url(`api/builds/${encodeURIComponent(id)}/events`),
      init,
    );
    if (!response.ok) {
      const error = await apiError(response);
      if (response.status >= 500) throw new Error(error.reason);
      throw error;
    }
    if (!response.body) throw new Error("no response body");
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return null;
      for (const message of parser.feed(decoder.decode(value, { stream: true }))) {
        const event = parseEvent(message.data);
        if (!event) continue;
        got.count += 1;
        onEvent(event);
        if (isTerminal(event.phase)) {
          await reader.cancel().catch(() => undefined);
          return event;
        }
      }
    }
  }
}

function parseEvent(data: string): BuildEvent | null {
  try {
    const value: unknown = JSON.parse(data);
    if (typeof value === "object" && value !== null && "phase" in value) {
      return value as BuildEvent;
    }
  } catch {
    // not JSON: ignore
  }
  return null;
}

async function apiError(response: Response): Promise<ApiError> {
  let reason = `${response.status} ${response.statusText}`.trim();
  let field: string | null = null;
  try {
    const text = await response.text();
    try {
      const body = JSON.parse(text) as Record<string, unknown>;
      const found = body["reason"] ?? body["message"] ?? body["error"] ?? body["detail"];
      if (typeof found === "string" && found) reason = found;
      if (typeof body["field"] === "string") field = body["field"];
    } catch {
      if (text && text.length < 300 && !text.includes("<")) reason = text;
    }
  } catch {
    // keep the status line
  }
  if (response.status === 401 || response.status === 403) {
    if (!field) reason = `${reason} (reload the page if the form has been open a long time)`;
  }
  return new ApiError(response.status, reason, field);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new DOMException("aborted", "AbortError"));
    });
  });
}
