/** The values of the option selects (and their "Other…" texts) of every profile. */
import { useState } from "preact/hooks";
import { checkUnlisted, type FormConfig, initialChoice, type ProfileConfig, UNLISTED_VALUE } from "./config";
import type { OptionValue } from "./components/OptionFields";

export type Values = Record<string, Record<string, OptionValue>>;

export function initialValues(cfg: FormConfig): Values {
  const out: Values = {};
  for (const p of cfg.profiles) {
    out[p.slug] = Object.fromEntries(p.options.map((o) => [o.name, initialChoice(cfg, p, o)]));
  }
  return out;
}

/** Errors of the "Other…" fields of a profile, keyed by option name. */
export function validate(profile: ProfileConfig | undefined, values: Values): Record<string, string> {
  const errors: Record<string, string> = {};
  for (const option of profile?.options ?? []) {
    const v = values[profile?.slug ?? ""]?.[option.name];
    if (v?.value !== UNLISTED_VALUE || !option.unlisted?.enabled) continue;
    const error = checkUnlisted(option.unlisted, v.other);
    if (error) errors[option.name] = error;
  }
  return errors;
}

export interface OptionValues {
  values: Values;
  errors: Record<string, string>;
  /** A change of `option` in the selected profile (clears its error). */
  onOption: (option: string, value: OptionValue) => void;
  /** Check the "Other…" fields of `profile` and show their errors; the first one at fault. */
  check: (profile: ProfileConfig | undefined) => string | null;
}

export function useOptionValues(config: FormConfig, profile: string): OptionValues {
  const [values, setValues] = useState(() => initialValues(config));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const onOption = (option: string, value: OptionValue): void => {
    setValues((v) => ({ ...v, [profile]: { ...v[profile], [option]: value } }));
    setErrors((e) => {
      const { [option]: _dropped, ...rest } = e;
      return rest;
    });
  };
  const check = (selected: ProfileConfig | undefined): string | null => {
    const found = validate(selected, values);
    setErrors(found);
    return Object.keys(found)[0] ?? null;
  };
  return { values, errors, onOption, check };
}
