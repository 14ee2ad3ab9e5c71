import { useCallback, useMemo, useState } from "preact/hooks";
import type { BuildRecord } from "./api/buildEvents";
import type { BuilderClient } from "./api/client";
import {
  checkUnlisted,
  type FormConfig,
  initialChoice,
  initialProfile,
  type ProfileConfig,
  UNLISTED_VALUE,
  unlistedFieldName,
} from "./config";
import { OptionFields, type OptionValue } from "./components/OptionFields";
import { ProfilePicker } from "./components/ProfilePicker";
import { RecentBuilds } from "./components/RecentBuilds";
import { RepoPanel } from "./components/RepoPanel";
import { useRecentBuilds, useSubmitBuild, useSubmitGuard } from "./formHooks";
import { type BuildState, useBuild } from "./useBuild";

type Values = Record<string, Record<string, OptionValue>>;

function initialValues(cfg: FormConfig): Values {
  const out: Values = {};
  for (const p of cfg.profiles) {
    out[p.slug] = Object.fromEntries(p.options.map((o) => [o.name, initialChoice(cfg, p, o)]));
  }
  return out;
}

/** Errors of the "Other…" fields of a profile, keyed by option name. */
function validate(profile: ProfileConfig | undefined, values: Values): Record<string, string> {
  const errors: Record<string, string> = {};
  for (const option of profile?.options ?? []) {
    const v = values[profile?.slug ?? ""]?.[option.name];
    if (v?.value !== UNLISTED_VALUE || !option.unlisted?.enabled) continue;
    const error = checkUnlisted(option.unlisted, v.other);
    if (error) errors[option.name] = error;
  }
  return errors;
}

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
    default:
      return build.fieldError ? `Error: ${build.fieldError.reason}` : "";
  }
}

interface Props {
  config: FormConfig;
  client: BuilderClient;
  form: HTMLFormElement | null;
}

export function App({ config, client, form }: Props) {
  const [profile, setProfile] = useState(() => initialProfile(config));
  const [values, setValues] = useState(() => initialValues(config));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [repo, setRepo] = useState("");
  const [gitRef, setGitRef] = useState("");
  const [pending, setPending] = useState<string | null>(null);
  const selected = config.profiles.find((p) => p.slug === profile);
  const repoProfile = config.profiles.find((p) => p.repositoryBuild?.enabled);
  const { state: build, start, cancel } = useBuild(client, setPending);
  const history = useRecentBuilds(client, repoProfile !== undefined);
  useSubmitBuild(form, pending);

  const startBuild = useCallback(() => {
    if (repo.trim()) void start(repo.trim(), gitRef.trim());
  }, [repo, gitRef, start]);

  // "Other…" values are checked first; a filled repository field means "build, then start".
  useSubmitGuard(form, () => {
    const found = validate(selected, values);
    const first = Object.keys(found)[0];
    const hasBuild = Boolean(form?.querySelector<HTMLInputElement>('input[name="build_id"]')?.value);
    const needsBuild = Boolean(selected?.repositoryBuild?.enabled && repo.trim() && !hasBuild);
    if (!first && !needsBuild) return true;
    setErrors(found);
    if (first && selected) {
      form?.ownerDocument.getElementById(unlistedFieldName(selected.slug, first))?.focus();
    } else startBuild();
    return false;
  });

  const onOption = (option: string, value: OptionValue): void => {
    setValues((v) => ({ ...v, [profile]: { ...v[profile], [option]: value } }));
    setErrors((e) => {
      const { [option]: _dropped, ...rest } = e;
      return rest;
    });
  };

  const busy = build.status === "requesting" || build.status === "running" || pending !== null;
  const startRecent = (record: BuildRecord): void => {
    if (!selected?.repositoryBuild?.enabled && repoProfile) setProfile(repoProfile.slug);
    setPending(record.id);
  };
  const profiles = useMemo(() => config.profiles, [config]);

  return (
    <div class="fancy-env-form">
      <ProfilePicker profiles={profiles} selected={profile} onSelect={setProfile} />
      {selected && (
        <OptionFields profile={selected} values={values[selected.slug] ?? {}} errors={errors} onChange={onOption} />
      )}
      {selected?.repositoryBuild?.enabled && (
        <RepoPanel
          repo={repo}
          gitRef={gitRef}
          build={build}
          onRepo={setRepo}
          onRef={setGitRef}
          onBuild={startBuild}
          onCancel={() => void cancel()}
        />
      )}
      {repoProfile && (
        <RecentBuilds
          records={history}
          disabled={busy}
          onStart={startRecent}
          share={{
            builderUrl: config.builderUrl,
            ticket: config.ticket,
            profile: selected?.repositoryBuild?.enabled ? selected.slug : repoProfile.slug,
          }}
        />
      )}
      <div role="status" aria-live="polite" class="visually-hidden" data-testid="fe-announce">
        {announcement(build)}
      </div>
    </div>
  );
}
