import "@testing-library/jest-dom/vitest";
import { cleanup, render, screen } from "@testing-library/preact";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it } from "vitest";
import { ApiClient } from "../api/client";
import { createLink } from "./links";
import { ShareLink } from "./ShareLink";

interface Call {
  url: string;
  init: RequestInit | undefined;
}

function fakeFetch(status: number, body: unknown, calls: Call[]) {
  return (url: string, init?: RequestInit) => {
    calls.push({ url, init });
    return Promise.resolve(new Response(JSON.stringify(body), { status }));
  };
}

/** The client the form makes from its config, over a fake fetch. */
function client(base: string, ticket: string, status: number, body: unknown, calls: Call[] = []) {
  return new ApiClient(base, ticket, fakeFetch(status, body, calls));
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
    const made = await createLink(client("/jh/services/fancy-env", "T1", 201, CREATED, calls),
      { profile: "repo", build_id: "b1" });
    expect(made.full_url).toBe(CREATED.full_url);
    expect(calls[0].url).toBe("/jh/services/fancy-env/api/links");
    expect(calls[0].url).not.toContain("T1");
    const headers = calls[0].init?.headers as Record<string, string>;
    expect(headers["X-Fancy-Env-Ticket"]).toBe("T1");
    expect(JSON.parse(calls[0].init?.body as string)).toEqual({ profile: "repo", build_id: "b1" });
  });

  it.each([
    [429, { status: 429, message: "too many links: at most 20 per 3600 s" }, "too many links"],
    [403, { status: 403, message: "autostart: one-click launch is turned off" }, "one-click"],
    [500, "an HTML error page", "HTTP 500"],
  ])("reports a %i with the service's message", async (status, body, words) => {
    await expect(createLink(client("/s/", "T", status, body), { profile: "x" })).rejects
      .toThrow(words);
  });
});

describe("ShareLink", () => {
  it("creates the link on click and shows it once with Copy", async () => {
    const calls: Call[] = [];
    const user = userEvent.setup();
    render(
      <ShareLink client={client("/s/", "T", 201, CREATED, calls)} label="org/env at main"
        request={{ profile: "repo", build_id: "b1" }} />,
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
      <ShareLink client={client("/s/", "T", 403, { message: "you may not share this environment" })}
        label="env" request={{ profile: "gpu" }} />,
    );
    await user.click(screen.getByRole("button", { name: "Share env" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("you may not share");
  });
});
