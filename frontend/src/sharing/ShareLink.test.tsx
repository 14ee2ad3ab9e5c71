import "@testing-library/jest-dom/vitest";
import { cleanup, render, screen } from "@testing-library/preact";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it } from "vitest";
import { createLink } from "./links";
import { ShareLink } from "./ShareLink";

interface Call {
  url: string;
  init: RequestInit | undefined;
}

function fakeFetch(status: number, body: unknown, calls: Call[]) {
  return async (url: string, init?: RequestInit) => {
    calls.push({ url, init });
    return new Response(JSON.stringify(body), { status });
  };
}

const CREATED = {
  id: "0123456789abcdef",
  url: "/jh/services/fancy-env/l/abc",
  full_url: "https://hub.example/jh/services/fancy-env/l/abc",
  expires_at: null,
  commit: "a".repeat(40),
  follow_branch: false,
};

afterEach(() => cleanup());

describe("createLink", () => {
  it("posts the request with the ticket header, never in the URL", async () => {
    const calls: Call[] = [];
    const made = await createLink("/jh/services/fancy-env", "T1", { profile: "repo", build_id: "b1" },
      fakeFetch(201, CREATED, calls));
    expect(made.full_url).toBe(CREATED.full_url);
    expect(calls[0].url).toBe("/jh/services/fancy-env/api/links");
    expect(calls[0].url).not.toContain("T1");
    const headers = calls[0].init?.headers as Record<string, string>;
    expect(headers["X-Fancy-Env-Ticket"]).toBe("T1");
    expect(JSON.parse(String(calls[0].init?.body))).toEqual({ profile: "repo", build_id: "b1" });
  });

  it.each([
    [429, { status: 429, message: "too many links: at most 20 per 3600 s" }, "too many links"],
    [403, { status: 403, message: "autostart: one-click launch is turned off" }, "one-click"],
    [500, "an HTML error page", "HTTP 500"],
  ])("reports a %i with the service's message", async (status, body, words) => {
    await expect(createLink("/s/", "T", { profile: "x" }, fakeFetch(status, body, []))).rejects
      .toThrow(words);
  });
});

describe("ShareLink", () => {
  it("creates the link on click and shows it once with Copy", async () => {
    const calls: Call[] = [];
    const user = userEvent.setup();
    render(
      <ShareLink builderUrl="/s/" ticket="T" label="org/env at main"
        request={{ profile: "repo", build_id: "b1" }} fetchImpl={fakeFetch(201, CREATED, calls)} />,
    );
    await user.click(screen.getByRole("button", { name: "Share org/env at main" }));
    expect(await screen.findByRole("textbox", { name: "Link to org/env at main" })).toHaveValue(
      CREATED.full_url,
    );
    expect(screen.getByRole("button", { name: "Copy" })).toBeInTheDocument();
    expect(calls).toHaveLength(1);
  });

  it("shows the refusal", async () => {
    const user = userEvent.setup();
    render(
      <ShareLink builderUrl="/s/" ticket="T" label="env" request={{ profile: "gpu" }}
        fetchImpl={fakeFetch(403, { message: "you may not share this environment" }, [])} />,
    );
    await user.click(screen.getByRole("button", { name: "Share env" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("you may not share");
  });
});
