// ESLint flat config: typescript-eslint's type-aware recommended rules plus the house budgets
// (docs/form.md): no function (component, hook, helper) over 60 lines, no module over 600.
// `npm run lint` runs `tsc --noEmit` first, then this. TypeScript stays at 6.0 (package.json):
// typescript-eslint needs its JavaScript API, which the native TypeScript 7 does not ship.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

const budgets = {
  "max-lines": ["error", { max: 600 }],
  "max-lines-per-function": ["error", { max: 60 }],
};

export default tseslint.config(
  { ignores: ["dist/", "node_modules/"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      ...budgets,
      eqeqeq: ["error", "always"],
      "no-console": "error",
      "@typescript-eslint/consistent-type-imports": ["error", { fixStyle: "inline-type-imports" }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/switch-exhaustiveness-check": "error",
    },
  },
  {
    // `describe(...)` bodies are long by nature; the module budget still holds for tests.
    files: ["src/**/*.test.ts", "src/**/*.test.tsx"],
    rules: { "max-lines-per-function": "off" },
  },
  {
    files: ["eslint.config.js"],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
