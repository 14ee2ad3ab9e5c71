/**
 * The one fetch wrapper of the frontend, shared by the build client (`api/builds.ts`), the
 * event-stream reader (`api/events.ts`), environment links (`sharing/links.ts`) and the
 * sharing service's building page (`building.ts`).
 *
 * - The base URL comes from the injected config (`builderUrl`, the service prefix under the
 *   hub's base_url); never a hard-coded path.
 * - The form ticket travels in the `X-Fancy-Env-Ticket` header (never in a URL or browser
 *   storage); pages of the service itself pass no ticket and use the HubOAuth cookie.
 * - A refusal becomes an `ApiError` carrying the service's message and the field it names
 *   (`{status, message, field?}`, the schema of `ApiError` in `api/buildEvents.ts`).
 */

export const TICKET_HEADER = "X-Fancy-Env-Ticket";

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/** A refusal by the service: `reason` is its message, `field` the input it names. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly field: string | null = null,
  ) {
    super(reason);
  }
}

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly ticket: string | null,
    private readonly fetchImpl: FetchLike = (i, init) => fetch(i, init),
  ) {}

  /** `path` under the base URL; an absolute path (`/...`) or a full URL is used as it is. */
  url(path: string): string {
    if (path.startsWith("/") || /^[a-z][a-z0-9+.-]*:/i.test(path)) return path;
    return this.baseUrl.replace(/\/?$/, "/") + path;
  }

  /** The request headers: the ticket (when there is one) plus `extra`. */
  headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.ticket === null ? { ...extra } : { [TICKET_HEADER]: this.ticket, ...extra };
  }

  /** A same-origin request with the ticket header; the caller checks the status. */
  fetch(path: string, init: RequestInit = {}): Promise<Response> {
    return this.fetchImpl(this.url(path), {
      credentials: "same-origin",
      ...init,
      headers: this.headers(init.headers as Record<string, string> | undefined),
    });
  }

  /** The JSON answer (`{}` when empty), or an `ApiError` for any non-2xx status. */
  async json<T>(path: string, init: RequestInit = {}): Promise<T> {
    const response = await this.fetch(path, init);
    if (!response.ok) throw await this.error(response);
    const text = await response.text();
    return (text ? JSON.parse(text) : {}) as T;
  }

  /** `method` with a JSON body. */
  send<T>(method: string, path: string, body: unknown): Promise<T> {
    return this.json<T>(path, {
      method,
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  /** The `ApiError` of a refused response (reads its body). */
  async error(response: Response): Promise<ApiError> {
    const error = await apiError(response);
    if (this.ticket === null || error.field || (response.status !== 401 && response.status !== 403)) {
      return error;
    }
    // the ticket expires: a form left open for long needs a reload
    const reason = `${error.reason} (reload the page if the form has been open a long time)`;
    return new ApiError(error.status, reason, error.field);
  }
}

/** Read the service's `{status, message, field?}` body; falls back to the status line. */
export async function apiError(response: Response): Promise<ApiError> {
  let reason = `HTTP ${response.status} ${response.statusText}`.trim();
  let field: string | null = null;
  const text = await response.text().catch(() => "");
  try {
    const body: unknown = JSON.parse(text);
    if (typeof body === "object" && body !== null) {
      const fields = body as Record<string, unknown>;
      const found = fields["message"] ?? fields["reason"] ?? fields["error"] ?? fields["detail"];
      if (typeof found === "string" && found) reason = found;
      if (typeof fields["field"] === "string") field = fields["field"];
    }
  } catch {
    if (text && text.length < 300 && !text.includes("<")) reason = text;
  }
  return new ApiError(response.status, reason, field);
}
