import { afterEach, describe, expect, it } from "vitest";
import { type BuildingPage, watchBuild } from "./building";
import { TICKET_HEADER } from "./api/client";
import { FakeBuilder } from "./testing/fakeBuilder";

const URL = "/jh/services/fancy-env/api/builds/b1/events";
const tick = () => new Promise((r) => setTimeout(r, 5));

function page(): BuildingPage & { built: number } {
  document.body.innerHTML = '<p id="phase">Waiting for the build…</p><pre id="log"></pre>';
  const p = {
    log: document.getElementById("log")!,
    phase: document.getElementById("phase")!,
    built: 0,
    onBuilt: () => (p.built += 1),
  };
  return p;
}

afterEach(() => {
  document.body.innerHTML = "";
});

describe("watchBuild (the sharing service's building page)", () => {
  it("shows the log and the phase, then hands over once built", async () => {
    const fake = new FakeBuilder();
    const p = page();
    const done = watchBuild(URL, p, fake.fetch);
    await tick();
    fake.emit(1, "fetching", "cloning");
    fake.emit(2, "building", "Step 1/2\n");
    await tick();
    expect(p.log.textContent).toBe("cloning\nStep 1/2\n");
    expect(p.phase.textContent).toBe("Build: building");
    fake.emit(3, "built", "", "img");
    await done;
    expect(p.built).toBe(1);
    const [call] = fake.callsTo("GET", "/events");
    expect(call?.url).toBe(URL); // the template's URL, as it is (any base_url)
    expect(call?.headers[TICKET_HEADER]).toBeUndefined(); // the service's page: cookie only
  });

  it("resumes a dropped stream with Last-Event-ID", async () => {
    const fake = new FakeBuilder();
    const p = page();
    const done = watchBuild(URL, p, fake.fetch, { retryDelayMs: 1 });
    await tick();
    fake.emit(1, "building", "one");
    await tick();
    fake.drop();
    await tick();
    await tick();
    fake.emit(2, "failed", "exit 1");
    await done;
    expect(fake.callsTo("GET", "/events")[1]?.headers["Last-Event-ID"]).toBe("1");
    expect(p.log.textContent).toBe("one\nexit 1\n");
    expect(p.phase.textContent).toBe("The build failed: exit 1");
    expect(p.phase.className).toBe("error");
    expect(p.built).toBe(0);
  });

  it("says why it cannot read the log", async () => {
    const p = page();
    const refuse = () =>
      Promise.resolve(new Response('{"status": 404, "message": "no build b1"}', { status: 404 }));
    await watchBuild(URL, p, refuse);
    expect(p.phase.textContent).toBe("Cannot read the build log: no build b1");
    expect(p.phase.className).toBe("error");
  });
});
