/** The build lifecycle of the repository panel: request, follow, cancel. */
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ansiToSegments, type Segment } from "./ansi";
import type { BuildEvent, BuildRecord } from "./api/buildEvents";
import { ApiError, type BuilderClient } from "./api/client";
import { toMs } from "./time";

export type BuildStatus = "idle" | "requesting" | "running" | "built" | "failed" | "cancelled";

export interface BuildState {
  status: BuildStatus;
  id: string | null;
  phase: string | null;
  /** The last phase before a terminal one (where a failed or cancelled build stopped). */
  lastActive: string | null;
  log: Segment[][];
  /** Oldest lines dropped from the view to keep it light (the service keeps them all). */
  dropped: number;
  /** A refusal of the request, shown next to the field it names. */
  fieldError: { field: "repo" | "ref"; reason: string } | null;
  /** A failure of the build itself (or the connection), shown under the log. */
  failure: string | null;
  startedAt: number | null;
  estimateMs: number | null;
}

const IDLE: BuildState = {
  status: "idle",
  id: null,
  phase: null,
  lastActive: null,
  log: [],
  dropped: 0,
  fieldError: null,
  failure: null,
  startedAt: null,
  estimateMs: null,
};

export interface UseBuild {
  state: BuildState;
  start: (repo: string, ref: string) => Promise<void>;
  cancel: () => Promise<void>;
}

/** Median duration of earlier real builds of the same repository, or null. */
export function estimateFrom(records: BuildRecord[]): number | null {
  const durations = records
    .filter((r) => r.status === "built" && !r.cache_hit)
    .map((r) => (toMs(r.finished) ?? NaN) - (toMs(r.started ?? r.created) ?? NaN))
    .filter((ms) => Number.isFinite(ms) && ms > 1000)
    .sort((a, b) => a - b);
  if (durations.length === 0) return null;
  return durations[Math.floor(durations.length / 2)] ?? null;
}

/** Lines shown at most; older ones are dropped from the view (counted in `dropped`). */
export const MAX_LOG_LINES = 2000;

export function appendLines(
  state: Pick<BuildState, "log" | "dropped">,
  message: string,
): Pick<BuildState, "log" | "dropped"> {
  const lines = message.split(/\r?\n/).filter(Boolean).map(ansiToSegments);
  if (lines.length === 0) return { log: state.log, dropped: state.dropped };
  const log = [...state.log, ...lines];
  const over = Math.max(0, log.length - MAX_LOG_LINES);
  return { log: over ? log.slice(over) : log, dropped: state.dropped + over };
}

export function useBuild(client: BuilderClient, onBuilt: (id: string) => void): UseBuild {
  const [state, setState] = useState<BuildState>(IDLE);
  const abort = useRef<AbortController | null>(null);
  const builtRef = useRef(onBuilt);
  builtRef.current = onBuilt;
  useEffect(() => () => abort.current?.abort(), []);

  const onEvent = useCallback((event: BuildEvent) => {
    setState((s) => ({
      ...s,
      phase: event.phase,
      lastActive: ["built", "failed", "cancelled"].includes(event.phase) ? s.lastActive : event.phase,
      ...appendLines(s, event.message),
    }));
  }, []);

  const follow = useCallback(
    async (id: string, controller: AbortController) => {
      try {
        const last = await client.follow(id, onEvent, { signal: controller.signal });
        if (last.phase === "built") {
          setState((s) => ({ ...s, status: "built", phase: "built" }));
          builtRef.current(id);
        } else {
          const failure = last.phase === "cancelled" ? null : last.message || "The build failed.";
          setState((s) => ({ ...s, status: last.phase === "cancelled" ? "cancelled" : "failed", failure }));
        }
      } catch (err) {
        if (controller.signal.aborted) return;
        const reason = err instanceof ApiError ? err.reason : String(err);
        setState((s) => ({ ...s, status: "failed", failure: reason }));
      }
    },
    [client, onEvent],
  );

  const start = useCallback(
    async (repo: string, ref: string) => {
      abort.current?.abort();
      const controller = new AbortController();
      abort.current = controller;
      setState({ ...IDLE, status: "requesting", startedAt: Date.now() });
      let record: BuildRecord;
      try {
        record = await client.createBuild(repo, ref);
      } catch (err) {
        const reason = err instanceof ApiError ? err.reason : `The build service is unreachable (${String(err)}).`;
        const field = err instanceof ApiError && err.field === "ref" ? "ref" : "repo";
        setState({ ...IDLE, fieldError: { field, reason } });
        return;
      }
      if (record.status === "built") {
        setState((s) => ({ ...s, status: "built", id: record.id, phase: "built" }));
        builtRef.current(record.id);
        return;
      }
      setState((s) => ({ ...s, status: "running", id: record.id, phase: record.status }));
      // earlier builds of the same (normalised) repository give the estimate
      void client.history(record.repo).then(
        (records) => setState((s) => ({ ...s, estimateMs: estimateFrom(records) })),
        () => undefined,
      );
      await follow(record.id, controller);
    },
    [client, follow],
  );

  const cancel = useCallback(async () => {
    const id = state.id;
    if (!id) return;
    try {
      await client.cancel(id);
    } catch (err) {
      const reason = err instanceof ApiError ? err.reason : String(err);
      setState((s) => ({ ...s, failure: `Could not cancel: ${reason}` }));
    }
  }, [client, state.id]);

  return { state, start, cancel };
}
