/**
 * The build lifecycle of the repository panel: request, follow, cancel.
 *
 * `buildReducer` is the whole state machine (pure, tested with a table in useBuild.test.ts);
 * `useBuild` only wires it to the build client: it dispatches what the service answers.
 */
import { type Dispatch, useCallback, useEffect, useReducer, useRef } from "preact/hooks";
import { ansiToSegments, type Segment } from "./ansi";
import { type BuildEvent, type BuildPhase, type BuildRecord, isTerminal } from "./api/buildEvents";
import type { BuilderClient } from "./api/builds";
import { ApiError } from "./api/client";
import { toMs } from "./time";

export type BuildStatus = "idle" | "requesting" | "running" | "built" | "failed" | "cancelled";

export interface BuildState {
  status: BuildStatus;
  id: string | null;
  phase: BuildPhase | null;
  /** The last phase before a terminal one (where a failed or cancelled build stopped). */
  lastActive: BuildPhase | null;
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

export const IDLE: BuildState = {
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

export type BuildAction =
  /** "Build and start" was pressed at `at` (ms). */
  | { type: "request"; at: number }
  /** `POST api/builds` was refused (or the service is unreachable). */
  | { type: "refused"; field: "repo" | "ref"; reason: string }
  /** `POST api/builds` answered: a cached image (`built`) or a build to follow. */
  | { type: "accepted"; record: BuildRecord }
  | { type: "event"; event: BuildEvent }
  | { type: "estimate"; ms: number | null }
  /** The stream ended with this terminal event. */
  | { type: "ended"; event: BuildEvent }
  /** The stream was lost or refused. */
  | { type: "lost"; reason: string }
  | { type: "cancelRefused"; reason: string };

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

function ended(state: BuildState, event: BuildEvent): BuildState {
  if (event.phase === "built") return { ...state, status: "built", phase: "built" };
  if (event.phase === "cancelled") return { ...state, status: "cancelled", failure: null };
  return { ...state, status: "failed", failure: event.message || "The build failed." };
}

export function buildReducer(state: BuildState, action: BuildAction): BuildState {
  switch (action.type) {
    case "request":
      return { ...IDLE, status: "requesting", startedAt: action.at };
    case "refused":
      return { ...IDLE, fieldError: { field: action.field, reason: action.reason } };
    case "accepted": {
      const { id, status } = action.record;
      return { ...state, id, phase: status, status: status === "built" ? "built" : "running" };
    }
    case "event": {
      const { phase, message } = action.event;
      const lastActive = isTerminal(phase) ? state.lastActive : phase;
      return { ...state, phase, lastActive, ...appendLines(state, message) };
    }
    case "estimate":
      return { ...state, estimateMs: action.ms };
    case "ended":
      return ended(state, action.event);
    case "lost":
      return { ...state, status: "failed", failure: action.reason };
    case "cancelRefused":
      return { ...state, failure: `Could not cancel: ${action.reason}` };
  }
}

function reasonOf(err: unknown): string {
  return err instanceof ApiError ? err.reason : String(err);
}

/** `POST api/builds`; a refusal is dispatched (next to the field it names) and gives null. */
async function request(
  client: BuilderClient,
  repo: string,
  ref: string,
  rebuild: boolean,
  dispatch: Dispatch<BuildAction>,
) {
  try {
    return await client.createBuild(repo, ref, rebuild);
  } catch (err) {
    const reason = err instanceof ApiError ? err.reason : `The build service is unreachable (${String(err)}).`;
    const field = err instanceof ApiError && err.field === "ref" ? "ref" : "repo";
    dispatch({ type: "refused", field, reason });
    return null;
  }
}

/** Follow the build's events into the state; resolves with the terminal event, or null. */
async function follow(client: BuilderClient, id: string, signal: AbortSignal, dispatch: Dispatch<BuildAction>) {
  try {
    const last = await client.follow(id, (event) => dispatch({ type: "event", event }), { signal });
    dispatch({ type: "ended", event: last });
    return last;
  } catch (err) {
    if (!signal.aborted) dispatch({ type: "lost", reason: reasonOf(err) });
    return null;
  }
}

export interface UseBuild {
  state: BuildState;
  /** `rebuild`: a fresh build of the commit without the layer cache. */
  start: (repo: string, ref: string, rebuild?: boolean) => Promise<void>;
  cancel: () => Promise<void>;
}

export function useBuild(client: BuilderClient, onBuilt: (id: string) => void): UseBuild {
  const [state, dispatch] = useReducer(buildReducer, IDLE);
  const abort = useRef<AbortController | null>(null);
  const builtRef = useRef(onBuilt);
  builtRef.current = onBuilt;
  useEffect(() => () => abort.current?.abort(), []);

  const start = useCallback(
    async (repo: string, ref: string, rebuild = false) => {
      abort.current?.abort();
      const controller = new AbortController();
      abort.current = controller;
      dispatch({ type: "request", at: Date.now() });
      const record = await request(client, repo, ref, rebuild, dispatch);
      if (!record || controller.signal.aborted) return;
      dispatch({ type: "accepted", record });
      if (record.status === "built") {
        builtRef.current(record.id);
        return;
      }
      // earlier builds of the same (normalised) repository give the estimate
      client.history(record.repo).then(
        (records) => dispatch({ type: "estimate", ms: estimateFrom(records) }),
        () => undefined,
      );
      const last = await follow(client, record.id, controller.signal, dispatch);
      if (last?.phase === "built") builtRef.current(record.id);
    },
    [client],
  );

  const cancel = useCallback(async () => {
    if (!state.id) return;
    await client.cancel(state.id).catch((err: unknown) => {
      dispatch({ type: "cancelRefused", reason: reasonOf(err) });
    });
  }, [client, state.id]);

  return { state, start, cancel };
}
