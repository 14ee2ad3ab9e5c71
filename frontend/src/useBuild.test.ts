import { act, renderHook, waitFor } from "@testing-library/preact";
import { describe, expect, it } from "vitest";
import type { BuildEvent, BuildPhase } from "./api/buildEvents";
import { BuilderClient } from "./api/builds";
import { FakeBuilder } from "./testing/fakeBuilder";
import { record } from "./testing/fixtures";
import {
  appendLines,
  type BuildAction,
  buildReducer,
  type BuildState,
  estimateFrom,
  IDLE,
  MAX_LOG_LINES,
  useBuild,
} from "./useBuild";

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

const at = (phase: BuildPhase, message = "", seq = 1): BuildEvent => ({
  build_id: "b1", seq, phase, message, time: 1, image: phase === "built" ? "img" : null,
});
const RUNNING: BuildState = { ...IDLE, status: "running", id: "b1", phase: "building", lastActive: "building", startedAt: 5 };

describe("buildReducer", () => {
  it.each<[string, BuildState, BuildAction, Partial<BuildState>]>([
    ["request clears the last build", { ...RUNNING, failure: "x" }, { type: "request", at: 9 },
      { status: "requesting", id: null, failure: null, startedAt: 9 }],
    ["refusal goes next to its field", { ...IDLE, status: "requesting" },
      { type: "refused", field: "ref", reason: "ref: no such branch" },
      { status: "idle", fieldError: { field: "ref", reason: "ref: no such branch" } }],
    ["cached image is built at once", { ...IDLE, status: "requesting" },
      { type: "accepted", record: record({ id: "b2", status: "built" }) },
      { status: "built", id: "b2", phase: "built" }],
    ["new build runs from its phase", { ...IDLE, status: "requesting" },
      { type: "accepted", record: record({ id: "b3", status: "queued" }) },
      { status: "running", id: "b3", phase: "queued" }],
    ["event moves the phase and logs", RUNNING, { type: "event", event: at("pushing", "push 1\npush 2") },
      { phase: "pushing", lastActive: "pushing", dropped: 0 }],
    ["terminal event keeps where it stopped", RUNNING, { type: "event", event: at("failed", "") },
      { phase: "failed", lastActive: "building" }],
    ["ended built", RUNNING, { type: "ended", event: at("built") }, { status: "built", phase: "built" }],
    ["ended failed, with the reason", RUNNING, { type: "ended", event: at("failed", "exit 1") },
      { status: "failed", failure: "exit 1" }],
    ["ended failed, without one", RUNNING, { type: "ended", event: at("failed") },
      { status: "failed", failure: "The build failed." }],
    ["ended cancelled", RUNNING, { type: "ended", event: at("cancelled", "by alice") },
      { status: "cancelled", failure: null }],
    ["lost stream", RUNNING, { type: "lost", reason: "Lost the connection" },
      { status: "failed", failure: "Lost the connection" }],
    ["estimate", RUNNING, { type: "estimate", ms: 60_000 }, { estimateMs: 60_000, status: "running" }],
    ["cancel refused keeps the build running", RUNNING, { type: "cancelRefused", reason: "403" },
      { status: "running", failure: "Could not cancel: 403" }],
  ])("%s", (_name, before, action, expected) => {
    const after = buildReducer(before, action);
    expect(after).toMatchObject(expected);
    expect(before).not.toBe(after); // a new state object: the hook re-renders
  });

  it("logs the lines of an event", () => {
    const after = buildReducer(RUNNING, { type: "event", event: at("building", "a\nb") });
    expect(after.log.map((line) => line[0]?.text)).toEqual(["a", "b"]);
  });
});

describe("useBuild", () => {
  it("requests, follows and reports the built image once", async () => {
    const fake = new FakeBuilder();
    const built: string[] = [];
    const client = new BuilderClient("/b/", "T", fake.fetch);
    const { result } = renderHook(() => useBuild(client, (id) => built.push(id)));
    await act(() => {
      void result.current.start("https://h/r.git", "main"); // resolves once the build ends
    });
    await waitFor(() => expect(fake.callsTo("GET", "/events")).toHaveLength(1));
    expect(result.current.state).toMatchObject({ status: "running", id: "b1", phase: "queued" });
    await act(() => fake.emit(1, "building", "step 1"));
    await waitFor(() => expect(result.current.state.phase).toBe("building"));
    await act(() => fake.emit(2, "built", "done", "img"));
    await waitFor(() => expect(result.current.state.status).toBe("built"));
    expect(built).toEqual(["b1"]);
  });

  it("puts a refusal next to the field it names", async () => {
    const fake = new FakeBuilder();
    fake.answer = [422, { status: 422, message: "repo: not allowed here", field: "repo" }];
    const client = new BuilderClient("/b/", "T", fake.fetch);
    const { result } = renderHook(() => useBuild(client, () => undefined));
    await act(() => result.current.start("https://evil/r.git", ""));
    expect(result.current.state.fieldError).toEqual({ field: "repo", reason: "repo: not allowed here" });
    expect(fake.callsTo("GET", "/events")).toHaveLength(0);
  });
});
