/**
 * Environment links, browser side: `POST api/links` on the build service, through the one
 * fetch wrapper (`api/client.ts`: the form's ticket header, `ApiError` with the service's
 * message). The answer carries the link's URL once; only its hash is kept by the service.
 * See docs/sharing.md for the API.
 */
import type { ApiClient } from "../api/client";

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

export function createLink(client: ApiClient, body: LinkRequest): Promise<LinkCreated> {
  return client.send<LinkCreated>("POST", "api/links", body);
}
