/** A fake build service behind a fetch function, for unit tests of the client and form. */
import type { BuildPhase, BuildRecord } from "../api/buildEvents";
import { record } from "./fixtures";

export interface Call {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string | null;
}

export class FakeBuilder {
  calls: Call[] = [];
  history: BuildRecord[] = [];
  /** What POST api/builds answers: a record, or [status, body] for a refusal. */
  answer: BuildRecord | [number, unknown] = record({ id: "b1", status: "queued" });
  private streams: ReadableStreamDefaultController<Uint8Array>[] = [];
  private encoder = new TextEncoder();

  fetch = (url: string, init: RequestInit = {}): Promise<Response> => Promise.resolve(this.respond(url, init));

  private respond(url: string, init: RequestInit): Response {
    const method = (init.method ?? "GET").toUpperCase();
    const headers = { ...(init.headers as Record<string, string> | undefined) };
    this.calls.push({ method, url, headers, body: (init.body as string | undefined) ?? null });
    if (url.includes("/events")) return this.stream(init.signal ?? undefined);
    if (method === "POST" && url.endsWith("api/links")) {
      const link = { id: "l1", url: "/l/abc", full_url: "http://hub/l/abc", expires_at: null };
      return json({ ...link, commit: "0123456789abcdef", follow_branch: false }, 201);
    }
    if (method === "POST") {
      if (Array.isArray(this.answer)) return json(this.answer[1], this.answer[0]);
      return json(this.answer, 201);
    }
    if (method === "DELETE") return json({ status: "cancelled" }, 202);
    return json({ builds: this.history }, 200);
  }

  private stream(signal?: AbortSignal): Response {
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.streams.push(controller);
        signal?.addEventListener("abort", () => controller.error(new Error("aborted")));
      },
    });
    return new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
  }

  /** Send one event on the newest open stream. */
  emit(seq: number, phase: BuildPhase, message: string, image: string | null = null): void {
    const event = { build_id: "b1", seq, phase, message, time: 1_700_000_000 + seq, image };
    const text = `id: ${seq}\ndata: ${JSON.stringify(event)}\n\n`;
    this.streams[this.streams.length - 1]?.enqueue(this.encoder.encode(text));
  }

  /** Close the newest stream (a dropped connection). */
  drop(): void {
    this.streams[this.streams.length - 1]?.close();
  }

  callsTo(method: string, fragment: string): Call[] {
    return this.calls.filter((c) => c.method === method && c.url.includes(fragment));
  }
}

function json(body: unknown, status: number): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json" },
  });
}
