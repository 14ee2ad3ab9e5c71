import { screen } from "@testing-library/preact";
import { describe, expect, it } from "vitest";
import { mount } from "./main";
import { CONFIG } from "./testing/fixtures";

describe("mount", () => {
  it("replaces the plain form with the enhanced one inside the hub's form", async () => {
    document.body.innerHTML = `
      <form id="spawn_form">
        <div id="fancy-env-plain"><input type="radio" name="profile" value="small"></div>
        <div id="fancy-env-form"></div>
        <script type="application/json" id="fancy-env-config">${JSON.stringify(CONFIG)}</script>
        <button type="submit">Start</button>
      </form>`;
    expect(mount(document)).toBe(true);
    expect(document.getElementById("fancy-env-plain")).toBeNull();
    expect(await screen.findByRole("group", { name: "Environment" })).toBeInTheDocument();
    expect(document.querySelectorAll('input[name="profile"]')).toHaveLength(2);
  });

  it("keeps the plain form when the config is broken", () => {
    document.body.innerHTML = `
      <form><div id="fancy-env-plain"></div><div id="fancy-env-form"></div>
      <script type="application/json" id="fancy-env-config">{"nope": 1}</script></form>`;
    expect(() => mount(document)).toThrow(/profiles/);
    expect(document.getElementById("fancy-env-plain")).not.toBeNull();
  });
});
