import type { BuildState, BuildStatus } from "../useBuild";
import { BuildLog } from "./BuildLog";
import { BuildProgress } from "./BuildProgress";
import { RebuildButton } from "./RebuildButton";

interface Props {
  repo: string;
  gitRef: string;
  build: BuildState;
  onRepo: (value: string) => void;
  onRef: (value: string) => void;
  onBuild: () => void;
  onCancel: () => void;
  /** Offer "Rebuild and start" (a fresh build without the layer cache) when set. */
  onRebuild?: (() => void) | undefined;
}

const BUSY: readonly BuildStatus[] = ["requesting", "running"];

interface TextFieldProps {
  class: string;
  id: string;
  label: string;
  placeholder: string;
  value: string;
  disabled: boolean;
  error: string | null;
  onValue: (value: string) => void;
  inputMode?: "url";
  autoComplete?: string;
}

/** A labelled text input in a grid column, with its error (if any) below it. */
function TextField(p: TextFieldProps) {
  const errorId = `${p.id}-error`;
  return (
    <div class={p.class}>
      <label class="form-label" for={p.id}>
        {p.label}
      </label>
      <input
        id={p.id}
        class={`form-control${p.error ? " is-invalid" : ""}`}
        type="text"
        inputMode={p.inputMode}
        autoComplete={p.autoComplete}
        placeholder={p.placeholder}
        value={p.value}
        disabled={p.disabled}
        aria-invalid={p.error ? "true" : undefined}
        aria-describedby={p.error ? errorId : undefined}
        onInput={(e) => p.onValue((e.target as HTMLInputElement).value)}
      />
      {p.error && (
        <div id={errorId} class="invalid-feedback d-block">
          {p.error}
        </div>
      )}
    </div>
  );
}

/** The repository URL and ref inputs, each with the refusal that names it. */
function RepoFields({ repo, gitRef, build, onRepo, onRef }: Props) {
  const busy = BUSY.includes(build.status);
  const repoError = build.fieldError?.field === "repo" ? build.fieldError.reason : null;
  const refError = build.fieldError?.field === "ref" ? build.fieldError.reason : null;
  return (
    <div class="row g-2">
      <TextField
        class="col-sm-8"
        id="fe-repo"
        label="Repository URL"
        inputMode="url"
        autoComplete="url"
        placeholder="https://example.org/you/project.git"
        value={repo}
        disabled={busy}
        error={repoError}
        onValue={onRepo}
      />
      <TextField
        class="col-sm-4"
        id="fe-ref"
        label="Branch, tag or commit"
        placeholder="HEAD"
        value={gitRef}
        disabled={busy}
        error={refError}
        onValue={onRef}
      />
    </div>
  );
}

/** "Build and start", and "Cancel build" while one runs. */
function BuildButtons({ repo, build, onBuild, onCancel, onRebuild }: Props) {
  const busy = BUSY.includes(build.status);
  return (
    <div class="mt-3 d-flex gap-2">
      <button type="button" class="btn btn-primary" disabled={busy || !repo.trim()} onClick={onBuild}>
        Build and start
      </button>
      {onRebuild && <RebuildButton disabled={busy || !repo.trim()} onRebuild={onRebuild} />}
      {busy && (
        <button type="button" class="btn btn-outline-danger" onClick={onCancel} disabled={!build.id}>
          Cancel build
        </button>
      )}
    </div>
  );
}

/** The progress bar, the failure and the live log of the build. */
function BuildOutput({ build }: { build: BuildState }) {
  const showProgress = build.status !== "idle" && build.status !== "requesting";
  return (
    <>
      {showProgress && (
        <BuildProgress
          phase={build.phase}
          lastActive={build.lastActive}
          startedAt={build.startedAt}
          estimateMs={build.estimateMs}
          running={BUSY.includes(build.status)}
        />
      )}
      {build.failure && (
        <div class="alert alert-danger mt-3 mb-0" id="fe-build-failure">
          {build.failure}
        </div>
      )}
      {build.log.length > 0 && <BuildLog lines={build.log} dropped={build.dropped} />}
    </>
  );
}

/** Repository + ref, "Build and start", the live log and the progress of the build. */
export function RepoPanel(props: Props) {
  return (
    <section class="fe-repo card mt-3" aria-labelledby="fe-repo-heading">
      <div class="card-body">
        <h2 id="fe-repo-heading" class="fs-5">
          Build from a Git repository
        </h2>
        <RepoFields {...props} />
        <BuildButtons {...props} />
        <BuildOutput build={props.build} />
      </div>
    </section>
  );
}
