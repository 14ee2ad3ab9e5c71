import { describe, expect, it } from "vitest";
import { ApiClient, ApiError, TICKET_HEADER } from "./client";

interface Seen {
  url: string;
  headers: Record<string, string>;
  credentials: RequestCredentials | undefined;
}

function answering(status: number, body: string, seen: Seen[] = []) {
  return (url: string, init: RequestInit = {}) => {
    seen.push({ url, headers: init.headers as Record<string, string>, credentials: init.credentials });
    return Promise.resolve(new Response(body, { status }));
  };
}

describe("ApiClient", () => {
  it.each([
    ["/jh/services/fancy-env/", "api/builds", "/jh/services/fancy-env/api/builds"],
    ["/jh/services/fancy-env", "api/builds", "/jh/services/fancy-env/api/builds"],
    ["/jh/services/fancy-env/", "/jh/services/fancy-env/api/builds/b1/events", "/jh/services/fancy-env/api/builds/b1/events"],
    ["/s/", "https://hub.example/s/api/links", "https://hub.example/s/api/links"],
  ])("resolves %s + %s", (base, path, expected) => {
    expect(new ApiClient(base, null).url(path)).toBe(expected);
  });

  it("sends the ticket header when it has one, and same-origin credentials", async () => {
    const seen: Seen[] = [];
    await new ApiClient("/s/", "T", answering(200, "{}", seen)).json("api/x");
    await new ApiClient("/s/", null, answering(200, "{}", seen)).json("api/x");
    expect(seen.map((s) => s.headers[TICKET_HEADER])).toEqual(["T", undefined]);
    expect(seen.map((s) => s.credentials)).toEqual(["same-origin", "same-origin"]);
  });

  it.each([
    ["the schema's message and field", 400, '{"status": 400, "message": "ref: no such branch", "field": "ref"}', null,
      "ref: no such branch", "ref"],
    ["an older reason", 400, '{"reason": "repo: not a Git URL"}', null, "repo: not a Git URL", null],
    ["a short text body", 502, "upstream down", null, "upstream down", null],
    ["an HTML page: the status line", 500, "<html>oops</html>", null, "HTTP 500", null],
    ["an expired ticket", 403, '{"message": "ticket expired"}', "T",
      "ticket expired (reload the page if the form has been open a long time)", null],
    ["a refusal of the service's own page", 403, '{"message": "not yours"}', null, "not yours", null],
  ])("turns %s into an ApiError", async (_name, status, body, ticket, reason, field) => {
    const client = new ApiClient("/s/", ticket, answering(status, body));
    const err = await client.json("api/x").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status, reason, field });
  });
});
