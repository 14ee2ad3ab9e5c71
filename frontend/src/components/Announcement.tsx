import type { BuildState } from "../useBuild";

/** What a screen reader hears about the build (the polite live region of the form). */
export function announcement(build: BuildState): string {
  switch (build.status) {
    case "requesting":
      return "Asking the build service…";
    case "running":
      return `Build phase: ${build.phase ?? "queued"}`;
    case "built":
      return "Image ready. Starting your server…";
    case "failed":
      return `Build failed: ${build.failure ?? ""}`;
    case "cancelled":
      return "Build cancelled.";
    case "idle":
      return build.fieldError ? `Error: ${build.fieldError.reason}` : "";
  }
}

export function Announcement({ build }: { build: BuildState }) {
  return (
    <div role="status" aria-live="polite" class="visually-hidden" data-testid="fe-announce">
      {announcement(build)}
    </div>
  );
}
