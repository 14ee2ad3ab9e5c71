import type { BuildRecord } from "../api/buildEvents";
import type { ApiClient } from "../api/client";
import { ShareLink } from "../sharing/ShareLink";
import { toMs } from "../time";

/** Newest successful build per (repo, ref), at most `limit`. */
export function recentEnvironments(records: BuildRecord[], limit = 5): BuildRecord[] {
  const seen = new Set<string>();
  const out: BuildRecord[] = [];
  const sorted = [...records].sort((a, b) => stamp(b) - stamp(a));
  for (const r of sorted) {
    const key = `${r.repo}\n${r.ref}`;
    if (r.status !== "built" || seen.has(key)) continue;
    seen.add(key);
    out.push(r);
    if (out.length >= limit) break;
  }
  return out;
}

function stamp(r: BuildRecord): number {
  return toMs(r.finished) ?? toMs(r.created) ?? 0;
}

function shortRepo(repo: string): string {
  return repo.replace(/^[a-z]+:\/\//, "").replace(/\.git$/, "");
}

interface Props {
  records: BuildRecord[];
  disabled: boolean;
  onStart: (record: BuildRecord) => void;
  /** Offer "Rebuild" (the same commit, without the layer cache) when set. */
  onRebuild?: ((record: BuildRecord) => void) | undefined;
  /** Offer "Share" (an environment link pinned to the build's commit) when set. */
  share?: { client: ApiClient; profile: string } | undefined;
}

/** The user's recent environments (server-side history): one click starts one again. */
export function RecentBuilds({ records, disabled, onStart, onRebuild, share }: Props) {
  if (records.length === 0) return null;
  return (
    <section class="fe-recent mt-3" aria-labelledby="fe-recent-heading">
      <h2 id="fe-recent-heading" class="fs-6">
        Your recent environments
      </h2>
      <ul class="list-group">
        {records.map((r) => (
          <li key={r.id} class="list-group-item d-flex flex-wrap align-items-center gap-2">
            <span class="flex-grow-1 text-truncate">
              <code>{shortRepo(r.repo)}</code> @ {r.ref || "HEAD"}
              {r.commit && <span class="text-body-secondary small"> ({r.commit.slice(0, 8)})</span>}
            </span>
            <button
              type="button"
              class="btn btn-sm btn-outline-primary"
              disabled={disabled}
              aria-label={`Start ${shortRepo(r.repo)} at ${r.ref || "HEAD"}`}
              onClick={() => onStart(r)}
            >
              Start
            </button>
            {onRebuild && (
              <button
                type="button"
                class="btn btn-sm btn-outline-secondary"
                disabled={disabled}
                aria-label={`Rebuild ${shortRepo(r.repo)} at ${r.ref || "HEAD"}`}
                title="Build this commit again without the cache; the current image serves until then"
                onClick={() => onRebuild(r)}
              >
                Rebuild
              </button>
            )}
            {share && (
              <ShareLink
                client={share.client}
                request={{ profile: share.profile, build_id: r.id }}
                label={`${shortRepo(r.repo)} at ${r.ref || "HEAD"}`}
              />
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}
