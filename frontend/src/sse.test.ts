import { describe, expect, it } from "vitest";
import { SseParser } from "./sse";

describe("SseParser", () => {
  it.each([
    ["one event", ["id: 1\ndata: {\"a\":1}\n\n"], [{ id: "1", event: "message", data: '{"a":1}' }]],
    ["split across chunks", ["id: 2\nda", "ta: x\n", "\n"], [{ id: "2", event: "message", data: "x" }]],
    ["CRLF lines", ["id: 3\r\ndata: y\r\n\r\n"], [{ id: "3", event: "message", data: "y" }]],
    ["keepalive comment", [": keepalive\n\n"], []],
    ["multi-line data", ["data: a\ndata: b\n\n"], [{ id: null, event: "message", data: "a\nb" }]],
    ["named event", ["event: phase\ndata: z\n\n"], [{ id: null, event: "phase", data: "z" }]],
  ])("%s", (_name, chunks, expected) => {
    const parser = new SseParser();
    const got = chunks.flatMap((c) => parser.feed(c));
    expect(got).toEqual(expected);
  });

  it("remembers the last event id for Last-Event-ID", () => {
    const parser = new SseParser();
    parser.feed("id: 7\ndata: a\n\nid: 8\ndata: b\n");
    expect(parser.lastEventId).toBe("7");
    parser.feed("\n");
    expect(parser.lastEventId).toBe("8");
  });

  it("reset drops a half-received event and keeps the last id", () => {
    const parser = new SseParser();
    parser.feed("id: 1\ndata: a\n\nid: 2\ndata: half");
    parser.reset();
    expect(parser.lastEventId).toBe("1");
    expect(parser.feed("\nid: 2\ndata: whole\n\n")).toEqual([{ id: "2", event: "message", data: "whole" }]);
  });
});
