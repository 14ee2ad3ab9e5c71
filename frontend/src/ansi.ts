/**
 * A small ANSI SGR → styled segments converter for build logs (no terminal emulator).
 * Handles reset, bold, dim, italic, underline, the 8/16 foreground and background colours,
 * and drops every other escape sequence (cursor moves, 256/true colour, OSC titles).
 */

export interface Segment {
  text: string;
  classes: string[];
}

interface Style {
  fg: number | null;
  bg: number | null;
  bold: boolean;
  dim: boolean;
  italic: boolean;
  underline: boolean;
}

const PLAIN: Style = { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false };
// CSI ... final byte, or OSC ... BEL/ST, or a lone two-byte escape.
// eslint-disable-next-line no-control-regex -- ANSI escapes are control characters
const ESCAPE = /\x1b\[([0-9;?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;

export function ansiToSegments(input: string): Segment[] {
  const segments: Segment[] = [];
  let style: Style = { ...PLAIN };
  let last = 0;
  const push = (text: string): void => {
    if (!text) return;
    const classes = classesOf(style);
    const prev = segments[segments.length - 1];
    if (prev && prev.classes.join(" ") === classes.join(" ")) prev.text += text;
    else segments.push({ text, classes });
  };
  for (const match of input.matchAll(ESCAPE)) {
    push(input.slice(last, match.index));
    last = (match.index ?? 0) + match[0].length;
    if (match[2] === "m") style = applySgr(style, match[1] ?? "");
  }
  push(input.slice(last));
  return segments;
}

function applySgr(style: Style, params: string): Style {
  const codes = params === "" ? [0] : params.split(";").map((p) => (p === "" ? 0 : Number(p)));
  let next = { ...style };
  for (let i = 0; i < codes.length; i++) {
    const code = codes[i] ?? 0;
    if (code === 0) next = { ...PLAIN };
    else if (code === 1) next.bold = true;
    else if (code === 2) next.dim = true;
    else if (code === 3) next.italic = true;
    else if (code === 4) next.underline = true;
    else if (code === 22) next = { ...next, bold: false, dim: false };
    else if (code === 23) next.italic = false;
    else if (code === 24) next.underline = false;
    else if (code >= 30 && code <= 37) next.fg = code - 30;
    else if (code >= 90 && code <= 97) next.fg = code - 90 + 8;
    else if (code === 39) next.fg = null;
    else if (code >= 40 && code <= 47) next.bg = code - 40;
    else if (code >= 100 && code <= 107) next.bg = code - 100 + 8;
    else if (code === 49) next.bg = null;
    else if (code === 38 || code === 48) i += codes[i + 1] === 5 ? 2 : 4; // skip 256/rgb
  }
  return next;
}

function classesOf(style: Style): string[] {
  const classes: string[] = [];
  if (style.fg !== null) classes.push(`fe-fg${style.fg}`);
  if (style.bg !== null) classes.push(`fe-bg${style.bg}`);
  if (style.bold) classes.push("fe-bold");
  if (style.dim) classes.push("fe-dim");
  if (style.italic) classes.push("fe-italic");
  if (style.underline) classes.push("fe-underline");
  return classes;
}
