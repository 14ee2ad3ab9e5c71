import type { BuildRecord } from "../api/buildEvents";
import type { FormConfig } from "../config";

/** A config JSON as fancy_env/form.py renders it (docs/internals.md). */
export const CONFIG: FormConfig = {
  baseUrl: "/jh/",
  builderUrl: "/jh/services/fancy-env/",
  ticket: "t1.alice.sig",
  user: "alice",
  serverName: "",
  spawnUrl: "/jh/hub/spawn/alice",
  profiles: [
    {
      slug: "small",
      displayName: "Small",
      description: "1 CPU, 2 GB",
      default: true,
      options: [
        {
          name: "image",
          displayName: "Image",
          choices: [
            { key: "py311", displayName: "Python 3.11", default: true },
            { key: "r43", displayName: "R 4.3" },
          ],
          unlisted: {
            enabled: true,
            displayName: "Custom image",
            displayNameInChoices: "Other…",
            validationRegex: "quay\\.io/[a-z]+:[0-9]+",
            validationMessage: "Use a quay.io image with a numeric tag.",
          },
        },
      ],
    },
    {
      slug: "repo",
      displayName: "From a repository",
      description: "Build an environment from a Git repository",
      options: [],
      repositoryBuild: { enabled: true },
    },
  ],
  saved: {},
};

/** A build record with defaults for the fields a test does not care about. */
export function record(fields: Partial<BuildRecord> & { id: string }): BuildRecord {
  return {
    user: "alice",
    repo: "https://h/a.git",
    ref: "",
    subdir: "",
    commit: "0123456789abcdef",
    image: "127.0.0.1:5000/fancy-env/a:0123456789ab",
    status: "built",
    reason: "",
    cache_hit: false,
    created: 1_700_000_000,
    started: null,
    finished: null,
    log_truncated: false,
    rebuild: false,
    rebuild_of: "",
    digest: "",
    private: false,
    events_url: "",
    ...fields,
  };
}
