/**
 * The build service's event schema, TypeScript side (owner: the build service).
 *
 * The Python side is `fancy_env/builder/events.py`; `tests/unit/test_event_schema_sync.py`
 * parses this file and fails when the phases or the fields of `BuildEvent`, `BuildRecord`,
 * `BuildDetail` or `ApiError` differ from Python's. Change both together.
 *
 * Every event on `GET api/builds/<id>/events` is one SSE message whose `id:` is `seq`
 * (counting from 1 per build), so a reconnect sending `Last-Event-ID: n` resumes at n + 1
 * without losing or repeating a line. Lines starting with `:` are keepalive comments.
 */

/** Phases in the order a build usually goes through them. */
export const PHASES = [
  "queued",
  "resolving",
  "fetching",
  "building",
  "pushing",
  "built",
  "failed",
  "cancelled",
] as const;

export type BuildPhase = (typeof PHASES)[number];

/** After one of these, the stream ends and the build never changes again. */
export const TERMINAL_PHASES: readonly BuildPhase[] = ["built", "failed", "cancelled"];

/** One `data:` JSON object of the event stream. */
export interface BuildEvent {
  build_id: string;
  seq: number;
  phase: BuildPhase;
  message: string;
  /** Unix time in seconds. */
  time: number;
  /** The image name, on the `built` event only. */
  image: string | null;
}

/** `POST api/builds`, and the items of `GET api/builds` (history). */
export interface BuildRecord {
  id: string;
  user: string;
  repo: string;
  ref: string;
  subdir: string;
  commit: string;
  image: string;
  status: BuildPhase;
  /** Why a build failed or was cancelled; empty otherwise. */
  reason: string;
  cache_hit: boolean;
  created: number;
  started: number | null;
  finished: number | null;
  /** the stored log reached the cap (max_log_bytes / max_log_lines) and was cut */
  log_truncated: boolean;
  /** a forced build without the layer cache (`POST api/builds` with `rebuild: true`) */
  rebuild: boolean;
  /** the build whose image a rebuild replaces ("" if none) */
  rebuild_of: string;
  /** what a launch pins: the registry's manifest digest, or the engine's image ID ("" = unknown) */
  digest: string;
  /** only the requester's own forge credential opened the repository (private repositories) */
  private: boolean;
  events_url: string;
}

/** `GET api/builds/<id>`: the record plus the queue and who asked for it. */
export interface BuildDetail extends BuildRecord {
  /** 1-based place in the queue; 0 when not waiting. */
  queue_position: number;
  users: string[];
  /** what a server of this build starts: `name@sha256:…`, an image ID, or the tag ("" unless built) */
  launch_image: string;
}

/** Body of every 4xx answer. */
export interface ApiError {
  status: number;
  message: string;
  /** The request field at fault, when there is one (`repo`, `ref`, `subdir`, ...). */
  field?: string;
}

/** The steps of a build that succeeds, in order: every phase up to `built` (progress bars). */
export const PROGRESS_STEPS: readonly BuildPhase[] = PHASES.slice(0, PHASES.indexOf("built") + 1);

export function isTerminal(phase: BuildPhase): boolean {
  return TERMINAL_PHASES.includes(phase);
}
