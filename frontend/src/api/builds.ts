/**
 * The build service client of the form: request, cancel, history and the event stream of
 * builds, all through the one fetch wrapper (`api/client.ts`) with the form ticket.
 */
import type { BuildEvent, BuildRecord } from "./buildEvents";
import { ApiClient } from "./client";
import { followEvents, type StreamOptions } from "./events";

export class BuilderClient extends ApiClient {
  /** `rebuild`: build the commit again without the layer cache (owners and admins). */
  createBuild(repo: string, ref: string, rebuild = false): Promise<BuildRecord> {
    return this.send<BuildRecord>("POST", "api/builds", rebuild ? { repo, ref, rebuild } : { repo, ref });
  }

  cancel(id: string): Promise<unknown> {
    return this.json(`api/builds/${encodeURIComponent(id)}`, { method: "DELETE" });
  }

  async history(repo?: string): Promise<BuildRecord[]> {
    const query = new URLSearchParams({ mine: "1" });
    if (repo) query.set("repo", repo);
    const body = await this.json<unknown>(`api/builds?${query.toString()}`);
    if (Array.isArray(body)) return body as BuildRecord[];
    const builds = (body as { builds?: unknown }).builds;
    return Array.isArray(builds) ? (builds as BuildRecord[]) : [];
  }

  /** Follow a build's events to its terminal one (see `followEvents`). */
  follow(id: string, onEvent: (event: BuildEvent) => void, options: StreamOptions = {}): Promise<BuildEvent> {
    return followEvents(this, `api/builds/${encodeURIComponent(id)}/events`, onEvent, options);
  }
}
