/**
 * Environment links, browser side: `POST api/links` on the build service with the form's
 * ticket (`X-Fancy-Env-Ticket`). The answer carries the link's URL once; only its hash is kept
 * by the service. See docs/sharing.md for the API.
 */

export interface LinkRequest {
  profile: string;
  /** KubeSpawner user_options keys: `<option>`, `<option>--unlisted-choice`. */
  options?: Record<string, string>;
  /** A build of this user's: repository, ref and commit come from it (pinned by default). */
  build_id?: string;
  follow_branch?: boolean;
  expires_in?: number;
  note?: string;
}

export interface LinkCreated {
  id: string;
  url: string;
  full_url: string;
  expires_at: number | null;
  commit: string;
  follow_branch: boolean;
}

type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export class LinkError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
  ) {
    super(reason);
  }
}

export async function createLink(
  builderUrl: string,
  ticket: string,
  body: LinkRequest,
  fetchImpl: FetchLike = (i, init) => fetch(i, init),
): Promise<LinkCreated> {
  const response = await fetchImpl(builderUrl.replace(/\/?$/, "/") + "api/links", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-Fancy-Env-Ticket": ticket },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: unknown = {};
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    parsed = { message: text };
  }
  if (!response.ok) {
    const message = (parsed as { message?: unknown }).message;
    throw new LinkError(response.status, typeof message === "string" ? message : `HTTP ${response.status}`);
  }
  return parsed as LinkCreated;
}
