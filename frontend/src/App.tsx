import { useCallback, useState } from "preact/hooks";
import type { BuildRecord } from "./api/buildEvents";
import type { BuilderClient } from "./api/builds";
import { type FormConfig, initialProfile, type ProfileConfig, unlistedFieldName } from "./config";
import { Announcement } from "./components/Announcement";
import { OpenAfterLaunch } from "./components/OpenAfterLaunch";
import { OptionFields } from "./components/OptionFields";
import { ProfilePicker } from "./components/ProfilePicker";
import { RecentBuilds } from "./components/RecentBuilds";
import { RepoPanel } from "./components/RepoPanel";
import { useRecentBuilds, useSubmitBuild, useSubmitGuard } from "./formHooks";
import { useBuild } from "./useBuild";
import { useOptionValues } from "./useOptionValues";

interface Props {
  config: FormConfig;
  client: BuilderClient;
  form: HTMLFormElement | null;
}

/** The repository fields, and "build, then start" with what they hold. */
function useRepoBuild(client: BuilderClient) {
  const [repo, setRepo] = useState("");
  const [gitRef, setGitRef] = useState("");
  /** The build whose image the hub's form posts (set once built, or by "Start" in the list). */
  const [pending, setPending] = useState<string | null>(null);
  const { state: build, start, cancel } = useBuild(client, setPending);
  const startBuild = useCallback(() => {
    if (repo.trim()) void start(repo.trim(), gitRef.trim());
  }, [repo, gitRef, start]);
  const rebuild = useCallback(() => {
    if (repo.trim()) void start(repo.trim(), gitRef.trim(), true);
  }, [repo, gitRef, start]);
  /** "Rebuild" in the recent list: the record's own commit, shown in the repository fields. */
  const rebuildRecord = useCallback(
    (record: BuildRecord) => {
      setRepo(record.repo);
      setGitRef(record.ref);
      void start(record.repo, record.commit || record.ref, true);
    },
    [start],
  );
  const busy = build.status === "requesting" || build.status === "running" || pending !== null;
  return { repo, setRepo, gitRef, setGitRef, pending, setPending, build, startBuild, cancel, busy, rebuild, rebuildRecord };
}

/**
 * Whether the hub's form may post now: "Other…" values are checked first (focus goes to the
 * first one at fault); a filled repository field without a build means "build, then start".
 */
function allowSubmit(
  form: HTMLFormElement | null,
  selected: ProfileConfig | undefined,
  firstError: string | null,
  repo: string,
  startBuild: () => void,
): boolean {
  const hasBuild = Boolean(form?.querySelector<HTMLInputElement>('input[name="build_id"]')?.value);
  const needsBuild = Boolean(selected?.repositoryBuild?.enabled && repo.trim() && !hasBuild);
  if (firstError && selected) {
    form?.ownerDocument.getElementById(unlistedFieldName(selected.slug, firstError))?.focus();
  } else if (needsBuild) startBuild();
  return !firstError && !needsBuild;
}

export function App({ config, client, form }: Props) {
  const [profile, setProfile] = useState(() => initialProfile(config));
  const options = useOptionValues(config, profile);
  const repo = useRepoBuild(client);
  const selected = config.profiles.find((p) => p.slug === profile);
  const repoProfile = config.profiles.find((p) => p.repositoryBuild?.enabled);
  const history = useRecentBuilds(client, repoProfile !== undefined);
  useSubmitBuild(form, repo.pending);
  useSubmitGuard(form, () => allowSubmit(form, selected, options.check(selected), repo.repo, repo.startBuild));
  const startRecent = (record: BuildRecord): void => {
    if (!selected?.repositoryBuild?.enabled && repoProfile) setProfile(repoProfile.slug);
    repo.setPending(record.id);
  };
  return (
    <div class="fancy-env-form">
      <ProfilePicker profiles={config.profiles} selected={profile} onSelect={setProfile} />
      {selected && (
        <OptionFields
          profile={selected}
          values={options.values[selected.slug] ?? {}}
          errors={options.errors}
          onChange={options.onOption}
        />
      )}
      {selected?.repositoryBuild?.enabled && (
        <RepoPanel
          repo={repo.repo}
          gitRef={repo.gitRef}
          build={repo.build}
          onRepo={repo.setRepo}
          onRef={repo.setGitRef}
          onBuild={repo.startBuild}
          onCancel={() => void repo.cancel()}
          onRebuild={repo.rebuild}
        />
      )}
      {repoProfile && (
        <RecentBuilds
          records={history}
          disabled={repo.busy}
          onStart={startRecent}
          onRebuild={(record) => {
            if (!selected?.repositoryBuild?.enabled && repoProfile) setProfile(repoProfile.slug);
            repo.rebuildRecord(record);
          }}
          share={{ client, profile: selected?.repositoryBuild?.enabled ? selected.slug : repoProfile.slug }}
        />
      )}
      <OpenAfterLaunch />
      <Announcement build={repo.build} />
    </div>
  );
}
