import { useEffect, useState } from "preact/hooks";
import { type BuildPhase, PROGRESS_STEPS as STEPS } from "../api/buildEvents";

export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.round(ms / 1000));
  const minutes = Math.floor(total / 60);
  const seconds = total % 60;
  return `${minutes}:${seconds.toString().padStart(2, "0")}`;
}

interface Props {
  phase: BuildPhase | null;
  lastActive: BuildPhase | null;
  startedAt: number | null;
  estimateMs: number | null;
  running: boolean;
}

/** Phase progress bar with elapsed time and the estimate from earlier builds. */
export function BuildProgress({ phase, lastActive, startedAt, estimateMs, running }: Props) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!running) return undefined;
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [running]);
  const failed = phase === "failed" || phase === "cancelled";
  const shown = failed ? lastActive : phase;
  const step = Math.max(0, STEPS.indexOf(shown ?? "queued"));
  const percent = Math.round(((step + 1) / STEPS.length) * 100);
  const elapsed = startedAt === null ? 0 : now - startedAt;
  return (
    <div class="fe-progress mt-3">
      <div
        class="progress"
        role="progressbar"
        aria-label="Build progress"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={percent}
        aria-valuetext={
          failed ? `${phase} during ${shown ?? "queued"}` : `${phase ?? "queued"}, step ${step + 1} of ${STEPS.length}`
        }
      >
        <div
          class={`progress-bar${failed ? " bg-danger" : running ? " progress-bar-striped progress-bar-animated" : " bg-success"}`}
          style={{ width: `${percent}%` }}
        />
      </div>
      <div class="d-flex justify-content-between small text-body-secondary mt-1">
        <span>{failed ? `${phase} during ${shown ?? "queued"}` : (phase ?? "queued")}</span>
        <span>
          Elapsed {formatDuration(elapsed)}
          {estimateMs !== null && ` · earlier builds took about ${formatDuration(estimateMs)}`}
        </span>
      </div>
    </div>
  );
}
