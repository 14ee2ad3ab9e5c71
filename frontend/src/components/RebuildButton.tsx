/** "Rebuild and start": a fresh build of the commit without the layer cache. */
interface Props {
  disabled: boolean;
  onRebuild: () => void;
}

export function RebuildButton({ disabled, onRebuild }: Props) {
  return (
    <>
      <button
        type="button"
        class="btn btn-outline-secondary"
        disabled={disabled}
        aria-describedby="fe-rebuild-help"
        onClick={onRebuild}
      >
        Rebuild and start
      </button>
      <span id="fe-rebuild-help" class="visually-hidden">
        Builds this commit again without the cache, for an environment that came out wrong. The
        current image keeps serving until the new one is built.
      </span>
    </>
  );
}
