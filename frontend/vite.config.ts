/// <reference types="vitest/config" />
import { defineConfig, type LibraryOptions } from "vite";

// Production bundles, written into the Python package and inlined by it (no static route):
// - `vite build`: `form.js` + `form.css`, one IIFE, the spawn form (fancy_env/form.py);
// - `vite build --mode building`: `building.js`, one IIFE exposing `fancyEnvBuilding`, the
//   sharing service's building page (fancy_env/sharing/templates/building.html).
// `npm run build` runs both; the second keeps what the first wrote.
const FORM: LibraryOptions = {
  entry: "src/main.tsx",
  name: "fancyEnvForm",
  formats: ["iife"],
  fileName: () => "form.js",
  cssFileName: "form",
};
const BUILDING: LibraryOptions = {
  entry: "src/building.ts",
  name: "fancyEnvBuilding",
  formats: ["iife"],
  fileName: () => "building.js",
};

export default defineConfig(({ mode }) => ({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: "../fancy_env/static/form",
    emptyOutDir: mode !== "building",
    target: "es2020",
    cssCodeSplit: false,
    reportCompressedSize: true,
    lib: mode === "building" ? BUILDING : FORM,
  },
  test: {
    environment: "jsdom",
    globals: true,
    include: ["src/**/*.test.ts", "src/**/*.test.tsx"],
    setupFiles: ["src/testing/setup.ts"],
  },
}));
