import {
  fieldName,
  type OptionConfig,
  type ProfileConfig,
  UNLISTED_VALUE,
  unlistedFieldName,
} from "../config";

export interface OptionValue {
  value: string;
  other: string;
}

interface Props {
  profile: ProfileConfig;
  values: Record<string, OptionValue>;
  errors: Record<string, string>;
  onChange: (option: string, value: OptionValue) => void;
}

/** One select per option of the selected profile, with KubeSpawner's field names. */
export function OptionFields({ profile, values, errors, onChange }: Props) {
  if (profile.options.length === 0) return null;
  return (
    <div class="fe-options">
      {profile.options.map((option) => (
        <OptionField
          key={`${profile.slug}/${option.name}`}
          profile={profile.slug}
          option={option}
          value={values[option.name] ?? { value: "", other: "" }}
          error={errors[option.name] ?? null}
          onChange={(v) => onChange(option.name, v)}
        />
      ))}
    </div>
  );
}

interface FieldProps {
  profile: string;
  option: OptionConfig;
  value: OptionValue;
  error: string | null;
  onChange: (value: OptionValue) => void;
}

function OptionField({ profile, option, value, error, onChange }: FieldProps) {
  const id = fieldName(profile, option.name);
  const otherId = unlistedFieldName(profile, option.name);
  const unlisted = option.unlisted?.enabled ? option.unlisted : null;
  const isOther = value.value === UNLISTED_VALUE && unlisted !== null;
  return (
    <div class="mb-3">
      <label class="form-label" for={id}>
        {option.displayName}
      </label>
      <select
        class="form-select"
        id={id}
        // As in KubeSpawner's form: with "Other…" chosen only the free text is posted.
        name={isOther ? undefined : id}
        value={value.value}
        onChange={(e) => onChange({ ...value, value: (e.target as HTMLSelectElement).value })}
      >
        {option.choices.map((c) => (
          <option key={c.key} value={c.key}>
            {c.displayName}
          </option>
        ))}
        {unlisted && (
          <option value={UNLISTED_VALUE}>{unlisted.displayNameInChoices || "Other…"}</option>
        )}
      </select>
      {isOther && unlisted && (
        <div class="mt-2">
          <label class="form-label" for={otherId}>
            {unlisted.displayName || "Other"}
          </label>
          <input
            class={`form-control${error ? " is-invalid" : ""}`}
            id={otherId}
            name={otherId}
            type="text"
            value={value.other}
            required
            aria-invalid={error ? "true" : undefined}
            aria-describedby={error ? `${otherId}-error` : undefined}
            onInput={(e) => onChange({ ...value, other: (e.target as HTMLInputElement).value })}
          />
          {error && (
            <div id={`${otherId}-error`} class="invalid-feedback d-block">
              {error}
            </div>
          )}
        </div>
      )}
    </div>
  );
}
