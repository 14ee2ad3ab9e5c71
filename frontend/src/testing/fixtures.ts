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
