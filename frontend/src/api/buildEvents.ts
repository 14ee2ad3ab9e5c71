/**
 * MINIMAL PLACEHOLDER written by the form engineer (C) until engineer B lands the real schema
 * of the build service's event stream (B owns this file and replaces it; a test keeps it in
 * sync with the Python side).
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

export type Phase = (typeof PHASES)[number];

export const TERMINAL_PHASES: readonly Phase[] = ["built", "failed", "cancelled"];

/** One `data:` JSON object of `GET api/builds/<id>/events`. */
export interface BuildEvent {
  phase: Phase;
  message: string;
  /** On `built`: the image name. */
  image?: string;
}

/** `POST api/builds`, `GET api/builds/<id>` and the items of `GET api/builds`. */
export interface BuildRecord {
  id: string;
  repo: string;
  ref: string;
  commit?: string | null;
  image: string;
  status: Phase;
  user?: string;
  created?: string | null;
  started?: string | null;
  finished?: string | null;
  reason?: string | null;
}
