import { useState } from "preact/hooks";

/**
 * "Open after launch": an optional path on the new server, posted as the hub's own form field
 * `urlpath` (e.g. `lab/tree/notebooks/intro.ipynb`). The hub's validator checks it (relative,
 * no `..`, no scheme) and says why when it refuses; the browser only hints at the shape.
 * Left empty, nothing is posted (the server opens its default page).
 */
export function OpenAfterLaunch() {
  const id = "fe-urlpath";
  const [value, setValue] = useState("");
  return (
    <div class="fe-open-after mb-3">
      <label class="form-label" for={id}>
        Open after launch <span class="text-body-secondary">(optional)</span>
      </label>
      <input
        id={id}
        name={value.trim() ? "urlpath" : undefined}
        value={value}
        onInput={(e) => setValue(e.currentTarget.value)}
        class="form-control"
        type="text"
        maxLength={1024}
        placeholder="lab/tree/notebooks/intro.ipynb"
        pattern="[^/\\\\].*"
        autoComplete="off"
        spellcheck={false}
        aria-describedby={`${id}-help`}
      />
      <div id={`${id}-help`} class="form-text">
        A path on your server, relative to its root: <code>lab/tree/&lt;file&gt;</code> opens a file
        in JupyterLab, <code>tree/&lt;folder&gt;</code> a folder. Empty opens the default page.
      </div>
    </div>
  );
}
