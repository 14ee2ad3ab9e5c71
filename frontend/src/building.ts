/**
 * The sharing service's building page (`fancy_env/sharing/templates/building.html`): follows
 * a build's event stream with the form's own client and parser (`api/events.ts`, `sse.ts`),
 * shows the log and the phase, and hands over to the page when the build is built.
 *
 * Built as a second bundle, `fancy_env/static/form/building.js` (an IIFE exposing the global
 * `fancyEnvBuilding`), which the template inlines like form.py inlines the form: no static
 * route and no URL to get wrong under any base_url. The page is the service's own, so no
 * ticket travels: the HubOAuth cookie authenticates the stream.
 */
import type { BuildEvent } from "./api/buildEvents";
import { ApiClient, ApiError, type FetchLike } from "./api/client";
import { followEvents, type StreamOptions } from "./api/events";

export interface BuildingPage {
  /** The `<pre>` the log lines go to. */
  log: HTMLElement;
  /** The status line (`role="status"`). */
  phase: HTMLElement;
  /** Called once, when the build is built (the page posts its launch form). */
  onBuilt: () => void;
}

/** Long builds are the point of this page: reconnect for a while before giving up. */
const PAGE_STREAM: StreamOptions = { maxRetries: 20, retryDelayMs: 1000, maxDelayMs: 5000 };

export function showEvent(page: BuildingPage, event: BuildEvent): void {
  if (event.message) {
    page.log.textContent = (page.log.textContent ?? "") + event.message.replace(/\n?$/, "\n");
    page.log.scrollTop = page.log.scrollHeight;
  }
  page.phase.textContent = `Build: ${event.phase}`;
}

function showProblem(page: BuildingPage, text: string): void {
  page.phase.textContent = text;
  page.phase.className = "error";
}

/** Follow the build at `eventsUrl` (an absolute path) to its end; never throws. */
export async function watchBuild(
  eventsUrl: string,
  page: BuildingPage,
  fetchImpl?: FetchLike,
  options: StreamOptions = PAGE_STREAM,
): Promise<void> {
  const client = new ApiClient("/", null, fetchImpl);
  try {
    const last = await followEvents(client, eventsUrl, (event) => showEvent(page, event), options);
    if (last.phase === "built") page.onBuilt();
    else showProblem(page, `The build ${last.phase}${last.message ? `: ${last.message}` : ""}`);
  } catch (err) {
    showProblem(page, `Cannot read the build log: ${err instanceof ApiError ? err.reason : String(err)}`);
  }
}
