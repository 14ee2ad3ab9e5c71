import { describe, expect, it } from "vitest";
import { checkUnlisted, initialChoice, initialProfile, parseConfig } from "./config";
import { CONFIG } from "./testing/fixtures";

describe("config", () => {
  it("rejects a config without profiles", () => {
    expect(() => parseConfig("{}")).toThrow(/profiles/);
  });

  it("picks the saved profile, else the default", () => {
    expect(initialProfile(CONFIG)).toBe("small");
    expect(initialProfile({ ...CONFIG, saved: { profile: "repo" } })).toBe("repo");
    expect(initialProfile({ ...CONFIG, saved: { profile: "gone" } })).toBe("small");
  });

  it.each([
    [{}, { value: "py311", other: "" }],
    [{ profile: "small", image: "r43" }, { value: "r43", other: "" }],
    [{ profile: "small", "image--unlisted-choice": "quay.io/x:1" }, { value: "unlisted-choice", other: "quay.io/x:1" }],
    [{ profile: "other", image: "r43" }, { value: "py311", other: "" }],
  ])("initial choice from saved %j", (saved, expected) => {
    const cfg = { ...CONFIG, saved: saved as Record<string, string> };
    const profile = cfg.profiles[0];
    expect(initialChoice(cfg, profile, profile.options[0])).toEqual(expected);
  });

  const unlisted = {
    enabled: true,
    displayName: "Image",
    validationRegex: "quay\\.io/[a-z]+:[0-9]+",
    validationMessage: "Use a quay.io image with a numeric tag.",
  };
  it.each([
    ["quay.io/x:1", null],
    ["quay.io/x:1-evil", "Use a quay.io image with a numeric tag."], // full match, unlike re.match
    ["", "Image: enter a value."],
    ["docker.io/x:1", "Use a quay.io image with a numeric tag."],
  ])("checkUnlisted(%j)", (value, expected) => {
    expect(checkUnlisted(unlisted, value)).toBe(expected);
  });
});
