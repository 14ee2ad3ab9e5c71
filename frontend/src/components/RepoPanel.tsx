import type { BuildState } from "../useBuild";
import { BuildLog } from "./BuildLog";
import { BuildProgress } from "./BuildProgress";

interface Props {
  repo: string;
  gitRef: string;
  build: BuildState;
  onRepo: (value: string) => void;
  onRef: (value: string) => void;
  onBuild: () => void;
  onCancel: () => void;
}

const BUSY = ["requesting", "running"];

/** Repository + ref, "Build and start", the live log and the progress of the build. */
export function RepoPanel({ repo, gitRef, build, onRepo, onRef, onBuild, onCancel }: Props) {
  const busy = BUSY.includes(build.status);
  const repoError = build.fieldError?.field === "repo" ? build.fieldError.reason : null;
  const refError = build.fieldError?.field === "ref" ? build.fieldError.reason : null;
  const showProgress = build.status !== "idle" && build.status !== "requesting";
  return (
    <section class="fe-repo card mt-3" aria-labelledby="fe-repo-heading">
      <div class="card-body">
        <h2 id="fe-repo-heading" class="fs-5">
          Build from a Git repository
        </h2>
        <div class="row g-2">
          <div class="col-sm-8">
            <label class="form-label" for="fe-repo">
              Repository URL
            </label>
            <input
              id="fe-repo"
              class={`form-control${repoError ? " is-invalid" : ""}`}
              type="text"
              inputMode="url"
              autoComplete="url"
              placeholder="https://example.org/you/project.git"
              value={repo}
              disabled={busy}
              aria-invalid={repoError ? "true" : undefined}
              aria-describedby={repoError ? "fe-repo-error" : undefined}
              onInput={(e) => onRepo((e.target as HTMLInputElement).value)}
            />
            {repoError && (
              <div id="fe-repo-error" class="invalid-feedback d-block">
                {repoError}
              </div>
            )}
          </div>
          <div class="col-sm-4">
            <label class="form-label" for="fe-ref">
              Branch, tag or commit
            </label>
            <input
              id="fe-ref"
              class={`form-control${refError ? " is-invalid" : ""}`}
              type="text"
              placeholder="HEAD"
              value={gitRef}
              disabled={busy}
              aria-invalid={refError ? "true" : undefined}
              aria-describedby={refError ? "fe-ref-error" : undefined}
              onInput={(e) => onRef((e.target as HTMLInputElement).value)}
            />
            {refError && (
              <div id="fe-ref-error" class="invalid-feedback d-block">
                {refError}
              </div>
            )}
          </div>
        </div>
        <div class="mt-3 d-flex gap-2">
          <button type="button" class="btn btn-primary" disabled={busy || !repo.trim()} onClick={onBuild}>
            Build and start
          </button>
          {busy && (
            <button type="button" class="btn btn-outline-danger" onClick={onCancel} disabled={!build.id}>
              Cancel build
            </button>
          )}
        </div>
        {showProgress && (
          <BuildProgress
            phase={build.phase}
            lastActive={build.lastActive}
            startedAt={build.startedAt}
            estimateMs={build.estimateMs}
            running={busy}
          />
        )}
        {build.failure && (
          <div class="alert alert-danger mt-3 mb-0" id="fe-build-failure">
            {build.failure}
          </div>
        )}
        {build.log.length > 0 && <BuildLog lines={build.log} dropped={build.dropped} />}
      </div>
    </section>
  );
}
