/**
 * Entry point: mounts the form over the plain HTML form that fancy_env/form.py renders.
 * Without JavaScript the plain form (same field names) still posts; with it, the plain
 * fields are removed so that only the enhanced form's fields are posted.
 */
import { render } from "preact";
import { App } from "./App";
import { BuilderClient } from "./api/builds";
import { readConfig } from "./config";
import "./form.css";

export const MOUNT_ID = "fancy-env-form";
export const PLAIN_ID = "fancy-env-plain";

export function mount(doc: Document = document): boolean {
  const root = doc.getElementById(MOUNT_ID);
  if (!root) return false;
  const config = readConfig(doc);
  doc.getElementById(PLAIN_ID)?.remove();
  const client = new BuilderClient(config.builderUrl, config.ticket);
  render(<App config={config} client={client} form={root.closest("form")} />, root);
  return true;
}

// The bundle is inlined right after the mount point: mount at once when it is there.
if (!mount()) document.addEventListener("DOMContentLoaded", () => mount());
