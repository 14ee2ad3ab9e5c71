/**
 * The form config JSON that fancy_env/form.py embeds in the spawner's options_form
 * (`<script type="application/json" id="fancy-env-config">`). docs/internals.md is the contract.
 * It holds only what this user may see: no overrides, no allowed_* lists, no repo patterns.
 */

export interface ChoiceConfig {
  key: string;
  displayName: string;
  default?: boolean;
  description?: string;
}

export interface UnlistedConfig {
  enabled: boolean;
  displayName: string;
  displayNameInChoices?: string;
  validationRegex?: string | null;
  validationMessage?: string;
}

export interface OptionConfig {
  name: string;
  displayName: string;
  choices: ChoiceConfig[];
  unlisted?: UnlistedConfig;
}

export interface ProfileConfig {
  slug: string;
  displayName: string;
  description?: string;
  default?: boolean;
  options: OptionConfig[];
  repositoryBuild?: { enabled: boolean };
}

export interface FormConfig {
  baseUrl: string;
  builderUrl: string;
  ticket: string;
  user: string;
  serverName: string;
  spawnUrl: string;
  profiles: ProfileConfig[];
  saved: Record<string, string>;
}

export const CONFIG_ELEMENT_ID = "fancy-env-config";
/** The value KubeSpawner's form posts in the select when "Other…" is chosen. */
export const UNLISTED_VALUE = "unlisted-choice";

export function fieldName(profile: string, option: string): string {
  return `profile-option-${profile}--${option}`;
}

export function unlistedFieldName(profile: string, option: string): string {
  return `${fieldName(profile, option)}--unlisted-choice`;
}

/** Read and check the config JSON; throws with a clear message when it is missing or wrong. */
export function readConfig(doc: Document): FormConfig {
  const el = doc.getElementById(CONFIG_ELEMENT_ID);
  if (!el || !el.textContent) {
    throw new Error(`fancy_env: no #${CONFIG_ELEMENT_ID} element in the page`);
  }
  return parseConfig(el.textContent);
}

export function parseConfig(text: string): FormConfig {
  const raw: unknown = JSON.parse(text);
  if (!isRecord(raw) || !Array.isArray(raw["profiles"])) {
    throw new Error("fancy_env: the form config has no profiles list");
  }
  for (const key of ["baseUrl", "builderUrl", "ticket", "user", "spawnUrl"]) {
    if (typeof raw[key] !== "string") {
      throw new Error(`fancy_env: the form config lacks the string "${key}"`);
    }
  }
  const cfg = raw as unknown as FormConfig;
  return {
    ...cfg,
    serverName: cfg.serverName ?? "",
    saved: isRecord(cfg.saved) ? cfg.saved : {},
    profiles: cfg.profiles.map((p) => ({ ...p, options: p.options ?? [] })),
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The profile to select first: saved, else the admin's default, else the first one. */
export function initialProfile(cfg: FormConfig): string {
  const saved = cfg.saved["profile"];
  if (saved && cfg.profiles.some((p) => p.slug === saved)) return saved;
  return (cfg.profiles.find((p) => p.default) ?? cfg.profiles[0])?.slug ?? "";
}

/** Initial select value and free text for one option, from saved options or defaults. */
export function initialChoice(
  cfg: FormConfig,
  profile: ProfileConfig,
  option: OptionConfig,
): { value: string; other: string } {
  const fromSaved = cfg.saved["profile"] === profile.slug;
  const savedOther = fromSaved ? cfg.saved[`${option.name}--unlisted-choice`] : undefined;
  if (savedOther && option.unlisted?.enabled) return { value: UNLISTED_VALUE, other: savedOther };
  const savedKey = fromSaved ? cfg.saved[option.name] : undefined;
  if (savedKey && option.choices.some((c) => c.key === savedKey)) {
    return { value: savedKey, other: "" };
  }
  const def = option.choices.find((c) => c.default) ?? option.choices[0];
  return { value: def ? def.key : UNLISTED_VALUE, other: "" };
}

/**
 * Client-side hint for "Other…": the admin's regex must match the whole value (the server
 * validator is the authority and uses a full match too). Returns an error message or null.
 */
export function checkUnlisted(unlisted: UnlistedConfig, value: string): string | null {
  const label = unlisted.displayName || "Other";
  if (!value.trim()) return `${label}: enter a value.`;
  if (!unlisted.validationRegex) return null;
  let re: RegExp;
  try {
    re = new RegExp(`^(?:${unlisted.validationRegex})$`);
  } catch {
    return null; // a Python-only regex: leave it to the server
  }
  if (re.test(value)) return null;
  return unlisted.validationMessage || `${label}: the value does not match ${unlisted.validationRegex}`;
}
