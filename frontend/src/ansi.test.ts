import { describe, expect, it } from "vitest";
import { ansiToSegments } from "./ansi";

describe("ansiToSegments", () => {
  it.each([
    ["plain", "hello", [{ text: "hello", classes: [] }]],
    ["red then reset", "\x1b[31mred\x1b[0m ok", [{ text: "red", classes: ["fe-fg1"] }, { text: " ok", classes: [] }]],
    ["bold green", "\x1b[1;32mgo", [{ text: "go", classes: ["fe-fg2", "fe-bold"] }]],
    ["bright fg + bg", "\x1b[94;41mx", [{ text: "x", classes: ["fe-fg12", "fe-bg1"] }]],
    ["256 colour skipped", "\x1b[38;5;196mx", [{ text: "x", classes: [] }]],
    ["cursor moves dropped", "a\x1b[2Kb\x1b[1A", [{ text: "ab", classes: [] }]],
    ["OSC title dropped", "\x1b]0;title\x07text", [{ text: "text", classes: [] }]],
    ["bare reset", "\x1b[33my\x1b[mn", [{ text: "y", classes: ["fe-fg3"] }, { text: "n", classes: [] }]],
  ])("%s", (_name, input, expected) => {
    expect(ansiToSegments(input)).toEqual(expected);
  });
});
