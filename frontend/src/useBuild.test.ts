import { describe, expect, it } from "vitest";
import { record } from "./testing/fixtures";
import { appendLines, estimateFrom, MAX_LOG_LINES } from "./useBuild";

describe("estimateFrom", () => {
  it.each([
    ["no history", [], null],
    ["median of real builds", [
      record({ id: "a", started: 100, finished: 160 }),
      record({ id: "b", started: 100, finished: 130 }),
      record({ id: "c", started: 100, finished: 190 }),
    ], 60_000],
    ["cache hits and failures ignored", [
      record({ id: "a", started: 100, finished: 100.2, cache_hit: true }),
      record({ id: "b", started: 100, finished: 400, status: "failed" }),
      record({ id: "c", started: 100, finished: 145 }),
    ], 45_000],
  ])("%s", (_name, records, expected) => {
    expect(estimateFrom(records)).toBe(expected);
  });
});

describe("appendLines", () => {
  it("splits messages into lines and keeps the view bounded", () => {
    let state = { log: [] as ReturnType<typeof appendLines>["log"], dropped: 0 };
    state = appendLines(state, "a\nb\r\n\n");
    expect(state.log.map((l) => l[0]?.text)).toEqual(["a", "b"]);
    for (let i = 0; i < MAX_LOG_LINES; i++) state = appendLines(state, `line ${i}`);
    expect(state.log).toHaveLength(MAX_LOG_LINES);
    expect(state.dropped).toBe(2);
    expect(state.log[state.log.length - 1]?.[0]?.text).toBe(`line ${MAX_LOG_LINES - 1}`);
  });
});
