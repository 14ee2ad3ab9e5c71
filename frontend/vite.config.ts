/// <reference types="vitest/config" />
import { defineConfig } from "vite";

// Production bundle: one IIFE `form.js` and one `form.css` written into the Python package,
// which inlines them into the spawner's options_form (see fancy_env/form.py).
export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: "../fancy_env/static/form",
    emptyOutDir: true,
    target: "es2020",
    cssCodeSplit: false,
    reportCompressedSize: true,
    lib: {
      entry: "src/main.tsx",
      name: "fancyEnvForm",
      formats: ["iife"],
      fileName: () => "form.js",
      cssFileName: "form",
    },
  },
  test: {
    environment: "jsdom",
    globals: true,
    include: ["src/**/*.test.ts", "src/**/*.test.tsx"],
    setupFiles: ["src/testing/setup.ts"],
  },
});
