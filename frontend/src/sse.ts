/**
 * Incremental parser for the `text/event-stream` format (the WHATWG rules that matter here):
 * lines end with LF, CRLF or CR; `data:` lines join with "\n"; `id:` sets the last event id;
 * lines starting with ":" are comments (keepalives); a blank line dispatches the event.
 *
 * The one event-stream parser of the frontend: the form's build client (`api/events.ts`) and
 * the sharing service's building page (`building.ts`) both use it. Its Python twin is
 * `fancy_env/builder/sse.py` (the CLI, the tests and the benches use that one).
 */

export interface SseMessage {
  id: string | null;
  event: string;
  data: string;
}

export class SseParser {
  private buffer = "";
  private data: string[] = [];
  private event = "";
  private id: string | null = null;
  /** The id of the last dispatched event that carried one (for Last-Event-ID). */
  lastEventId: string | null = null;

  /** Feed a decoded chunk; returns the events completed by it. */
  feed(chunk: string): SseMessage[] {
    this.buffer += chunk;
    const out: SseMessage[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      // A lone CR at the very end may be the first half of CRLF: wait for more.
      if (match[0] === "\r" && match.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const message = this.line(line);
      if (message) out.push(message);
    }
    return out;
  }

  /**
   * Forget a half-received line or event (a dropped connection); keeps `lastEventId`, so a
   * reconnect sending it gets that event again, whole.
   */
  reset(): void {
    this.buffer = "";
    this.data = [];
    this.event = "";
    this.id = null;
  }

  private line(line: string): SseMessage | null {
    if (line === "") return this.dispatch();
    if (line.startsWith(":")) return null;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.event = value;
    else if (field === "id" && !value.includes("\0")) this.id = value;
    return null;
  }

  private dispatch(): SseMessage | null {
    if (this.id !== null) this.lastEventId = this.id;
    const hadData = this.data.length > 0;
    const message: SseMessage = {
      id: this.id,
      event: this.event || "message",
      data: this.data.join("\n"),
    };
    this.data = [];
    this.event = "";
    this.id = null;
    return hadData ? message : null;
  }
}
