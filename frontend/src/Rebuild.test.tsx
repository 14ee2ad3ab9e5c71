import { cleanup, render, screen, waitFor } from "@testing-library/preact";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it } from "vitest";
import { App } from "./App";
import { BuilderClient } from "./api/builds";
import { CONFIG, record } from "./testing/fixtures";
import { FakeBuilder } from "./testing/fakeBuilder";

/** The form inside a real <form>, as JupyterHub's spawn page renders it. */
function setup(fake = new FakeBuilder()) {
  const form = document.createElement("form");
  const mount = document.createElement("div");
  form.append(mount);
  document.body.append(form);
  const submitted: Array<Record<string, string>> = [];
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    submitted.push(Object.fromEntries(new FormData(form).entries()) as Record<string, string>);
  });
  const client = new BuilderClient(CONFIG.builderUrl, CONFIG.ticket, fake.fetch);
  render(<App config={CONFIG} client={client} form={form} />, { container: mount });
  return { fake, submitted, user: userEvent.setup() };
}

function posted(fake: FakeBuilder): unknown[] {
  return fake.callsTo("POST", "api/builds").map((c) => JSON.parse(c.body ?? "{}") as unknown);
}

afterEach(() => {
  cleanup();
  document.body.innerHTML = "";
});

describe("rebuild on demand", () => {
  it("asks for a rebuild of the typed repository and starts it when built", async () => {
    const fake = new FakeBuilder();
    fake.answer = record({ id: "b1", status: "queued", rebuild: true, rebuild_of: "b0" });
    const s = setup(fake);
    await s.user.click(screen.getByRole("radio", { name: /From a repository/ }));
    const rebuild = screen.getByRole("button", { name: "Rebuild and start" });
    expect(rebuild).toBeDisabled();
    expect(rebuild).toHaveAccessibleDescription(/current image keeps serving until the new one is built/);
    await s.user.type(screen.getByLabelText("Repository URL"), "https://h/a.git");
    await s.user.type(screen.getByLabelText("Branch, tag or commit"), "main");
    await s.user.click(rebuild);
    await waitFor(() => expect(fake.callsTo("GET", "/events")).toHaveLength(1));
    expect(posted(fake)).toEqual([{ repo: "https://h/a.git", ref: "main", rebuild: true }]);
    expect(screen.getByRole("button", { name: "Rebuild and start" })).toBeDisabled();
    fake.emit(1, "built", "Built it", "img");
    await waitFor(() => expect(s.submitted).toEqual([{ profile: "repo", build_id: "b1" }]));
  });

  it("a plain build does not ask for a rebuild", async () => {
    const s = setup();
    await s.user.click(screen.getByRole("radio", { name: /From a repository/ }));
    await s.user.type(screen.getByLabelText("Repository URL"), "https://h/a.git");
    await s.user.click(screen.getByRole("button", { name: "Build and start" }));
    await waitFor(() => expect(posted(s.fake)).toEqual([{ repo: "https://h/a.git", ref: "" }]));
  });

  it("rebuilds a recent environment at its own commit", async () => {
    const fake = new FakeBuilder();
    fake.history = [record({ id: "old", ref: "main", commit: "c0ffee00c0ffee00" })];
    const s = setup(fake);
    await s.user.click(await screen.findByRole("button", { name: "Rebuild h/a at main" }));
    await waitFor(() => expect(posted(fake)).toHaveLength(1));
    expect(posted(fake)).toEqual([{ repo: "https://h/a.git", ref: "c0ffee00c0ffee00", rebuild: true }]);
    expect(screen.getByRole("radio", { name: /From a repository/ })).toBeChecked();
    expect(screen.getByLabelText("Repository URL")).toHaveValue("https://h/a.git");
  });

  it("shows the service's refusal (too soon) and posts nothing to the hub", async () => {
    const fake = new FakeBuilder();
    fake.history = [record({ id: "old", ref: "main" })];
    const message = "one rebuild per image every 300 s is allowed (rebuild_interval = 300)";
    fake.answer = [429, { status: 429, message, field: "rebuild" }];
    const s = setup(fake);
    await s.user.click(await screen.findByRole("button", { name: "Rebuild h/a at main" }));
    const field = screen.getByLabelText("Repository URL");
    await waitFor(() => expect(field).toHaveAccessibleDescription(/rebuild_interval = 300/));
    expect(s.submitted).toEqual([]);
  });
});
