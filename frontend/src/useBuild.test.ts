import { describe, expect, it } from "vitest";
import { record } from "./testing/fixtures";
import { estimateFrom } from "./useBuild";

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
