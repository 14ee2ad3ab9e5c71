import { describe, expect, it } from "vitest";
import type { BuildEvent } from "./buildEvents";
import { BuilderClient } from "./builds";
import { ApiError, TICKET_HEADER } from "./client";
import { FakeBuilder } from "../testing/fakeBuilder";
import { record } from "../testing/fixtures";

const tick = () => new Promise((r) => setTimeout(r, 5));

describe("BuilderClient", () => {
  it("sends the ticket in a header, never in the URL", async () => {
    const fake = new FakeBuilder();
    const client = new BuilderClient("/jh/services/fancy-env/", "T", fake.fetch);
    await client.createBuild("https://h/r.git", "main");
    const [call] = fake.calls;
    expect(call?.url).toBe("/jh/services/fancy-env/api/builds");
    expect(call?.headers[TICKET_HEADER]).toBe("T");
    expect(call?.url).not.toContain("T");
    expect(JSON.parse(call?.body ?? "{}")).toEqual({ repo: "https://h/r.git", ref: "main" });
  });

  it("turns a refusal into an ApiError with the service's reason and field", async () => {
    const fake = new FakeBuilder();
    fake.answer = [400, { reason: "repo: not a Git URL", field: "repo" }];
    const client = new BuilderClient("/b/", "T", fake.fetch);
    const err = await client.createBuild("nope", "").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).reason).toBe("repo: not a Git URL");
    expect((err as ApiError).field).toBe("repo");
  });

  it("resumes a dropped stream with Last-Event-ID and loses no event", async () => {
    const fake = new FakeBuilder();
    const client = new BuilderClient("/b/", "T", fake.fetch);
    const seen: BuildEvent[] = [];
    const done = client.follow("b1", (e) => seen.push(e), { retryDelayMs: 1 });
    await tick();
    fake.emit(1, "fetching", "cloning");
    fake.emit(2, "building", "step 1");
    await tick();
    fake.drop();
    await tick();
    await tick();
    const streams = fake.callsTo("GET", "/events");
    expect(streams).toHaveLength(2);
    expect(streams[0]?.headers["Last-Event-ID"]).toBeUndefined();
    expect(streams[1]?.headers["Last-Event-ID"]).toBe("2");
    fake.emit(3, "built", "done", "img");
    const last = await done;
    expect(last.phase).toBe("built");
    expect(seen.map((e) => e.message)).toEqual(["cloning", "step 1", "done"]);
  });

  it("reads history from {builds: [...]} or a bare list", async () => {
    const fake = new FakeBuilder();
    fake.history = [record({ id: "x" })];
    const client = new BuilderClient("/b/", "T", fake.fetch);
    expect(await client.history("r")).toHaveLength(1);
    expect(fake.calls[0]?.url).toBe("/b/api/builds?mine=1&repo=r");
  });
});
