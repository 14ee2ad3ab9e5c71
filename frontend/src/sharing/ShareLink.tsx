import { useState } from "preact/hooks";
import type { ApiClient } from "../api/client";
import { createLink, type LinkCreated, type LinkRequest } from "./links";

interface Props {
  client: ApiClient;
  request: LinkRequest;
  /** Label of what is shared, e.g. "org/repo at main". */
  label: string;
}

interface ShareState {
  link: LinkCreated | null;
  error: string;
  busy: boolean;
  share: () => Promise<void>;
}

/** Create the link once, on demand; the refusal's message is kept for display. */
export function useShareLink(client: ApiClient, request: LinkRequest): ShareState {
  const [link, setLink] = useState<LinkCreated | null>(null);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  async function share(): Promise<void> {
    setBusy(true);
    setError("");
    try {
      setLink(await createLink(client, request));
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  }
  return { link, error, busy, share };
}

/** The created link, read-only and selected on focus, with a Copy button. */
function CreatedLink({ link, label }: { link: LinkCreated; label: string }) {
  const [copied, setCopied] = useState(false);
  const copy = (): void => {
    navigator.clipboard.writeText(link.full_url).then(
      () => setCopied(true),
      () => setCopied(false),
    );
  };
  return (
    <div class="fe-share-link d-flex gap-2 align-items-center">
      <input
        class="form-control form-control-sm"
        readOnly
        value={link.full_url}
        aria-label={`Link to ${label}`}
        onFocus={(e) => e.currentTarget.select()}
      />
      <button type="button" class="btn btn-sm btn-outline-secondary" onClick={copy}>
        {copied ? "Copied" : "Copy"}
      </button>
    </div>
  );
}

/** "Share this environment": creates a pinned link and shows it (once) with a Copy button. */
export function ShareLink({ client, request, label }: Props) {
  const { link, error, busy, share } = useShareLink(client, request);
  if (link) return <CreatedLink link={link} label={label} />;
  return (
    <span class="fe-share-link">
      <button
        type="button"
        class="btn btn-sm btn-outline-secondary"
        disabled={busy}
        aria-label={`Share ${label}`}
        onClick={() => void share()}
      >
        Share
      </button>
      {error && (
        <span role="alert" class="text-danger small ms-2">
          {error}
        </span>
      )}
    </span>
  );
}
