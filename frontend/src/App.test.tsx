import { cleanup, render, screen, waitFor, within } from "@testing-library/preact";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { App } from "./App";
import { BuilderClient } from "./api/builds";
import { TICKET_HEADER } from "./api/client";
import type { FormConfig } from "./config";
import { CONFIG, record } from "./testing/fixtures";
import { FakeBuilder } from "./testing/fakeBuilder";

interface Setup {
  fake: FakeBuilder;
  submitted: Array<Record<string, string>>;
  user: ReturnType<typeof userEvent.setup>;
}

/** Render the form inside a real <form>, as JupyterHub's spawn page does. */
function setup(config: FormConfig = CONFIG, fake = new FakeBuilder()): Setup {
  const form = document.createElement("form");
  const mount = document.createElement("div");
  const start = document.createElement("button");
  start.type = "submit";
  start.textContent = "Start";
  form.append(mount, start);
  document.body.append(form);
  const submitted: Array<Record<string, string>> = [];
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    submitted.push(Object.fromEntries(new FormData(form).entries()) as Record<string, string>);
  });
  const client = new BuilderClient(config.builderUrl, config.ticket, fake.fetch);
  render(<App config={config} client={client} form={form} />, { container: mount });
  return { fake, submitted, user: userEvent.setup() };
}

afterEach(() => {
  vi.unstubAllGlobals();
  cleanup();
  document.body.innerHTML = "";
});

describe("profiles and options", () => {
  it("shows profile cards with descriptions and selects the default", () => {
    setup();
    const group = screen.getByRole("group", { name: "Environment" });
    const small = within(group).getByRole("radio", { name: "Small" });
    expect(small).toBeChecked();
    expect(small).toHaveAccessibleDescription("1 CPU, 2 GB");
    const repo = within(group).getByRole("radio", { name: "From a repository" });
    expect(repo).not.toBeChecked();
    expect(repo).toHaveAccessibleDescription(
      "Git repository Build an environment from a Git repository",
    );
  });

  it("posts KubeSpawner's field names", async () => {
    const { user, submitted } = setup();
    await user.selectOptions(screen.getByLabelText("Image"), "r43");
    await user.click(screen.getByRole("button", { name: "Start" }));
    expect(submitted).toEqual([{ profile: "small", "profile-option-small--image": "r43" }]);
  });

  it("checks Other… against the admin's regex before posting", async () => {
    const { user, submitted } = setup();
    await user.selectOptions(screen.getByLabelText("Image"), "unlisted-choice");
    const other = screen.getByLabelText("Custom image");
    await user.type(other, "docker.io/evil:latest");
    await user.click(screen.getByRole("button", { name: "Start" }));
    expect(submitted).toEqual([]);
    expect(other).toHaveAttribute("aria-invalid", "true");
    expect(other).toHaveAccessibleDescription("Use a quay.io image with a numeric tag.");
    expect(other).toHaveFocus();
    await user.clear(other);
    await user.type(other, "quay.io/good:2");
    await user.click(screen.getByRole("button", { name: "Start" }));
    expect(submitted).toEqual([
      { profile: "small", "profile-option-small--image--unlisted-choice": "quay.io/good:2" },
    ]);
  });

  it("restores saved options", () => {
    setup({ ...CONFIG, saved: { profile: "small", "image--unlisted-choice": "quay.io/a:1" } });
    expect(screen.getByLabelText("Image")).toHaveValue("unlisted-choice");
    expect(screen.getByLabelText("Custom image")).toHaveValue("quay.io/a:1");
  });
});

describe("repository builds", () => {
  async function openRepo(s: Setup, repo = "http://127.0.0.1:9/r.git") {
    await s.user.click(screen.getByRole("radio", { name: /From a repository/ }));
    await s.user.type(screen.getByLabelText("Repository URL"), repo);
  }

  it("builds with a live coloured log and starts the server when built", async () => {
    const s = setup();
    await openRepo(s);
    await s.user.click(screen.getByRole("button", { name: "Build and start" }));
    await waitFor(() => expect(s.fake.callsTo("GET", "/events")).toHaveLength(1));
    const post = s.fake.callsTo("POST", "api/builds")[0];
    expect(post?.headers[TICKET_HEADER]).toBe("t1.alice.sig");
    s.fake.emit(1, "building", "\x1b[32mStep 1/2\x1b[0m : FROM base");
    const log = await screen.findByRole("log", { name: "Build log" });
    await waitFor(() => expect(log).toHaveTextContent("Step 1/2 : FROM base"));
    expect(within(log).getByText("Step 1/2")).toHaveClass("fe-fg2");
    expect(screen.getByRole("status")).toHaveTextContent("Build phase: building");
    expect(screen.getByRole("progressbar", { name: "Build progress" })).toHaveAttribute(
      "aria-valuetext",
      "building, step 4 of 6",
    );
    s.fake.emit(2, "built", "done", "img");
    await waitFor(() => expect(s.submitted).toEqual([{ profile: "repo", build_id: "b1" }]));
    expect(screen.getByRole("status")).toHaveTextContent("Image ready");
  });

  it("estimates the time from earlier builds of the same repository", async () => {
    const fake = new FakeBuilder();
    fake.history = [record({ id: "e1", started: 1000, finished: 1090 })];
    fake.answer = record({ id: "b1", status: "queued", repo: "https://h/a.git" });
    const s = setup(CONFIG, fake);
    await openRepo(s);
    await s.user.click(screen.getByRole("button", { name: "Build and start" }));
    expect(await screen.findByText(/earlier builds took about 1:30/)).toBeInTheDocument();
    expect(fake.calls.some((c) => c.url.endsWith("api/builds?mine=1&repo=https%3A%2F%2Fh%2Fa.git"))).toBe(true);
    expect(screen.getByText(/Elapsed 0:0\d/)).toBeInTheDocument();
  });

  it("starts at once from a cached image", async () => {
    const fake = new FakeBuilder();
    fake.answer = record({ id: "c1", status: "built", cache_hit: true });
    const s = setup(CONFIG, fake);
    await openRepo(s);
    await s.user.click(screen.getByRole("button", { name: "Build and start" }));
    await waitFor(() => expect(s.submitted).toEqual([{ profile: "repo", build_id: "c1" }]));
    expect(fake.callsTo("GET", "/events")).toHaveLength(0);
  });

  it("shows the service's reason next to the field", async () => {
    const fake = new FakeBuilder();
    fake.answer = [400, { reason: "repo: only http(s) Git URLs are allowed", field: "repo" }];
    const s = setup(CONFIG, fake);
    await openRepo(s, "file:///etc");
    await s.user.click(screen.getByRole("button", { name: "Build and start" }));
    const input = screen.getByLabelText("Repository URL");
    await waitFor(() => expect(input).toHaveAttribute("aria-invalid", "true"));
    expect(input).toHaveAccessibleDescription("repo: only http(s) Git URLs are allowed");
    expect(s.submitted).toEqual([]);
  });

  it("cancels a running build", async () => {
    const s = setup();
    await openRepo(s);
    await s.user.click(screen.getByRole("button", { name: "Build and start" }));
    const cancel = await screen.findByRole("button", { name: "Cancel build" });
    await waitFor(() => expect(cancel).toBeEnabled());
    await s.user.click(cancel);
    expect(s.fake.callsTo("DELETE", "api/builds/b1")).toHaveLength(1);
    s.fake.emit(1, "cancelled", "cancelled by alice");
    await waitFor(() => expect(screen.getByRole("status")).toHaveTextContent("Build cancelled."));
    expect(s.submitted).toEqual([]);
  });

  it("shows a failed build's reason", async () => {
    const s = setup();
    await openRepo(s);
    await s.user.click(screen.getByRole("button", { name: "Build and start" }));
    await waitFor(() => expect(s.fake.callsTo("GET", "/events")).toHaveLength(1));
    s.fake.emit(1, "building", "Step 1/1 : RUN exit 1");
    s.fake.emit(2, "failed", "repo2docker exited with 1");
    await waitFor(() =>
      expect(screen.getByRole("status")).toHaveTextContent("Build failed: repo2docker exited with 1"),
    );
    expect(screen.getByRole("progressbar", { name: "Build progress" })).toHaveAttribute(
      "aria-valuetext",
      "failed during building",
    );
    expect(s.submitted).toEqual([]);
  });

  it("Enter in the repository field builds instead of posting an empty start", async () => {
    const s = setup();
    await openRepo(s);
    await s.user.keyboard("{Enter}");
    await waitFor(() => expect(s.fake.callsTo("POST", "api/builds")).toHaveLength(1));
    expect(s.submitted).toEqual([]);
  });

  it("lists recent environments from the server and starts one in one click", async () => {
    const fake = new FakeBuilder();
    fake.history = [
      record({ id: "old", ref: "main", finished: 1_700_000_100 }),
      record({ id: "new", ref: "main", finished: 1_700_000_200 }),
      record({ id: "bad", repo: "https://h/b.git", status: "failed" }),
    ];
    const s = setup(CONFIG, fake);
    const start = await screen.findByRole("button", { name: "Start h/a at main" });
    expect(screen.queryByRole("button", { name: /h\/b/ })).toBeNull();
    await s.user.click(start);
    await waitFor(() => expect(s.submitted).toEqual([{ profile: "repo", build_id: "new" }]));
  });

  it("shares a recent environment by a link pinned to its build", async () => {
    const fake = new FakeBuilder();
    fake.history = [record({ id: "b7", ref: "main" })];
    vi.stubGlobal("fetch", fake.fetch);
    const s = setup(CONFIG, fake);
    await s.user.click(await screen.findByRole("button", { name: "Share h/a at main" }));
    expect(await screen.findByRole("textbox", { name: "Link to h/a at main" })).toHaveValue(
      "http://hub/l/abc",
    );
    const [post] = fake.callsTo("POST", "api/links");
    expect(post?.headers[TICKET_HEADER]).toBe("t1.alice.sig");
    expect(JSON.parse(post?.body ?? "{}")).toEqual({ profile: "repo", build_id: "b7" });
  });
});

describe("Open after launch", () => {
  it("posts the optional urlpath field with the hub's form", async () => {
    const { submitted, user } = setup();
    await user.type(screen.getByLabelText(/Open after launch/), "lab/tree/notebooks/intro.ipynb");
    await user.click(screen.getByRole("button", { name: "Start" }));
    expect(submitted[submitted.length - 1]?.urlpath).toBe("lab/tree/notebooks/intro.ipynb");
  });
});
