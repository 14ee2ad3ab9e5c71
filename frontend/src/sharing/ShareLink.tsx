import { useState } from "preact/hooks";
import { createLink, type LinkCreated, type LinkRequest } from "./links";

type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

interface Props {
  builderUrl: string;
  ticket: string;
  request: LinkRequest;
  /** Label of what is shared, e.g. "org/repo at main". */
  label: string;
  fetchImpl?: FetchLike;
}

/** "Share this environment": creates a pinned link and shows it (once) with a Copy button. */
export function ShareLink({ builderUrl, ticket, request, label, fetchImpl }: Props) {
  const [link, setLink] = useState<LinkCreated | null>(null);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const [copied, setCopied] = useState(false);

  async function share() {
    setBusy(true);
    setError("");
    try {
      setLink(await createLink(builderUrl, ticket, request, fetchImpl));
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  }

  async function copy() {
    if (!link) return;
    try {
      await navigator.clipboard.writeText(link.full_url);
      setCopied(true);
    } catch {
      setCopied(false);
    }
  }

  if (link) {
    return (
      <div class="fe-share-link d-flex gap-2 align-items-center">
        <input
          class="form-control form-control-sm"
          readOnly
          value={link.full_url}
          aria-label={`Link to ${label}`}
          onFocus={(e) => (e.currentTarget as HTMLInputElement).select()}
        />
        <button type="button" class="btn btn-sm btn-outline-secondary" onClick={copy}>
          {copied ? "Copied" : "Copy"}
        </button>
      </div>
    );
  }
  return (
    <span class="fe-share-link">
      <button
        type="button"
        class="btn btn-sm btn-outline-secondary"
        disabled={busy}
        aria-label={`Share ${label}`}
        onClick={share}
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
