/** Hooks that tie the form to the hub's page: its <form> element and the build history. */
import { useEffect, useRef, useState } from "preact/hooks";
import type { BuildRecord } from "./api/buildEvents";
import type { BuilderClient } from "./api/builds";
import { recentEnvironments } from "./components/RecentBuilds";

/** This user's recent environments, from the build service's history (never browser storage). */
export function useRecentBuilds(client: BuilderClient, enabled: boolean): BuildRecord[] {
  const [history, setHistory] = useState<BuildRecord[]>([]);
  useEffect(() => {
    if (!enabled) return;
    client.history().then(
      (records) => setHistory(recentEnvironments(records)),
      () => setHistory([]),
    );
  }, [client, enabled]);
  return history;
}

/** Once `buildId` is set (and the DOM shows its profile), post the hub's form with it. */
export function useSubmitBuild(form: HTMLFormElement | null, buildId: string | null): void {
  useEffect(() => {
    if (!buildId || !form) return;
    let input = form.querySelector<HTMLInputElement>('input[name="build_id"]');
    if (!input) {
      input = form.ownerDocument.createElement("input");
      input.type = "hidden";
      input.name = "build_id";
      form.appendChild(input);
    }
    input.value = buildId;
    if (typeof form.requestSubmit === "function") form.requestSubmit();
    else form.submit();
  }, [buildId, form]);
}

/**
 * Run `allow` on every submit of the hub's form, before the hub's own handlers (capture
 * phase); when it returns false the submit is stopped, so the hub's spinner does not start.
 */
export function useSubmitGuard(form: HTMLFormElement | null, allow: () => boolean): void {
  const latest = useRef(allow);
  latest.current = allow;
  useEffect(() => {
    if (!form) return undefined;
    const onSubmit = (e: Event): void => {
      if (latest.current()) return;
      e.preventDefault();
      e.stopImmediatePropagation();
    };
    form.addEventListener("submit", onSubmit, true);
    return () => form.removeEventListener("submit", onSubmit, true);
  }, [form]);
}
