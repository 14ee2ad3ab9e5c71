/**
 * MINIMAL PLACEHOLDER written by the form engineer (C) from fancy_env/builder/events.py,
 * until engineer B lands the real file (B owns it; a test keeps it in sync with Python).
 *
 * Every event on `GET api/builds/<id>/events` is one SSE message whose `id:` is `seq`.
 */

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

export const TERMINAL_PHASES: readonly BuildPhase[] = ["built", "failed", "cancelled"];

/** One `data:` JSON object of the event stream. */
export interface BuildEvent {
  build_id: string;
  seq: number;
  phase: BuildPhase;
  message: string;
  time: number;
  image: string | null;
}

/** `POST api/builds`, `GET api/builds/<id>` and the items of `GET api/builds`. */
export interface BuildRecord {
  id: string;
  user: string;
  repo: string;
  ref: string;
  subdir: string;
  commit: string;
  image: string;
  status: BuildPhase;
  reason: string;
  cache_hit: boolean;
  created: number;
  started: number | null;
  finished: number | null;
  events_url: string;
}
