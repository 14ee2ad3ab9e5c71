import { useEffect, useRef } from "preact/hooks";
import type { Segment } from "../ansi";

/** The live build log: ANSI colours as spans, follows the end unless scrolled up. */
export function BuildLog({ lines, dropped = 0 }: { lines: Segment[][]; dropped?: number }) {
  const ref = useRef<HTMLPreElement>(null);
  const stick = useRef(true);
  useEffect(() => {
    const el = ref.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [lines.length]);
  return (
    <pre
      ref={ref}
      class="fe-log mt-2"
      role="log"
      aria-live="off"
      aria-label="Build log"
      tabIndex={0}
      onScroll={(e) => {
        const el = e.currentTarget;
        stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
      }}
    >
      {dropped > 0 && <div class="fe-dim">… {dropped} earlier lines not shown</div>}
      {lines.map((line, i) => (
        <div key={dropped + i}>
          {line.map((seg, j) =>
            seg.classes.length ? (
              <span key={j} class={seg.classes.join(" ")}>
                {seg.text}
              </span>
            ) : (
              seg.text
            ),
          )}
        </div>
      ))}
    </pre>
  );
}
