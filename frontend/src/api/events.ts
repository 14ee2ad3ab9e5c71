/**
 * Following a build's event stream (`GET api/builds/<id>/events`) to its terminal event.
 *
 * The stream is read with fetch() (so the ticket header travels) and parsed by `SseParser`,
 * the one event-stream parser of the frontend. A dropped connection is resumed with
 * `Last-Event-ID`, so no line is lost or repeated; a 4xx refusal ends the follow at once.
 */
import { SseParser } from "../sse";
import { type BuildEvent, isTerminal } from "./buildEvents";
import { ApiError, type ApiClient } from "./client";

export interface StreamOptions {
  signal?: AbortSignal;
  /** Reconnects in a row without receiving an event before giving up. */
  maxRetries?: number;
  /** The wait before the n-th reconnect in a row is n times this, at most `maxDelayMs`. */
  retryDelayMs?: number;
  maxDelayMs?: number;
}

type OnEvent = (event: BuildEvent) => void;

/** Follow `path` until a terminal event, which it resolves with. */
export async function followEvents(
  client: ApiClient,
  path: string,
  onEvent: OnEvent,
  options: StreamOptions = {},
): Promise<BuildEvent> {
  const { signal, maxRetries = 5, retryDelayMs = 500, maxDelayMs = 5000 } = options;
  const parser = new SseParser();
  let failures = 0;
  for (;;) {
    const got = { count: 0 };
    try {
      const terminal = await readStream(client, path, parser, onEvent, got, signal);
      if (terminal) return terminal;
    } catch (err) {
      if (err instanceof ApiError || signal?.aborted) throw err;
    }
    parser.reset(); // a half-received event is sent again after Last-Event-ID
    failures = got.count > 0 ? 1 : failures + 1;
    if (failures > maxRetries) {
      throw new ApiError(0, "Lost the connection to the build service.");
    }
    await sleep(Math.min(retryDelayMs * failures, maxDelayMs), signal);
  }
}

async function readStream(
  client: ApiClient,
  path: string,
  parser: SseParser,
  onEvent: OnEvent,
  got: { count: number },
  signal?: AbortSignal,
): Promise<BuildEvent | null> {
  const headers: Record<string, string> = { Accept: "text/event-stream" };
  if (parser.lastEventId !== null) headers["Last-Event-ID"] = parser.lastEventId;
  const init: RequestInit = { headers, cache: "no-store" };
  if (signal) init.signal = signal;
  const response = await client.fetch(path, init);
  if (!response.ok) {
    const error = await client.error(response);
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

/** The build event of a `data:` payload, or null when it is not one. */
export function parseEvent(data: string): BuildEvent | null {
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

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new DOMException("aborted", "AbortError"));
    });
  });
}
