import type { ProfileConfig } from "../config";

interface Props {
  profiles: ProfileConfig[];
  selected: string;
  onSelect: (slug: string) => void;
}

/** Profile cards: native radios named `profile`, so arrow keys and the plain POST just work. */
export function ProfilePicker({ profiles, selected, onSelect }: Props) {
  return (
    <fieldset class="fe-profiles">
      <legend class="fs-5">Environment</legend>
      <div class="fe-cards">
        {profiles.map((p) => {
          const id = `fe-profile-${p.slug}`;
          const checked = p.slug === selected;
          const builds = p.repositoryBuild?.enabled === true;
          const described = [builds ? `${id}-git` : "", p.description ? `${id}-desc` : ""]
            .filter(Boolean)
            .join(" ");
          return (
            <label key={p.slug} for={id} class={`card fe-card${checked ? " fe-card-selected" : ""}`}>
              <span class="card-body">
                <input
                  class="form-check-input me-2"
                  type="radio"
                  name="profile"
                  id={id}
                  value={p.slug}
                  checked={checked}
                  aria-labelledby={`${id}-title`}
                  aria-describedby={described || undefined}
                  onChange={() => onSelect(p.slug)}
                />
                <span id={`${id}-title`} class="fe-card-title">
                  {p.displayName}
                </span>
                {builds && (
                  <span id={`${id}-git`} class="badge text-bg-secondary ms-2">
                    Git repository
                  </span>
                )}
                {p.description && (
                  <span id={`${id}-desc`} class="fe-card-desc text-body-secondary">
                    {p.description}
                  </span>
                )}
              </span>
            </label>
          );
        })}
      </div>
    </fieldset>
  );
}
