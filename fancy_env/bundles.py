"""The production bundles built from `frontend/`, read to be inlined into HTML pages.

`npm run build` (run by the wheel build through hatch-jupyter-builder) writes them to
`fancy_env/static/form/`: `form.js` + `form.css` (the spawn form, inlined by `form.py`) and
`building.js` (the sharing service's building page, inlined by `building.html`). Inlining needs
no static-file route and no URL that a hub `base_url` could break; `</script` inside the code is
escaped so the text can sit between `<script>` tags.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static" / "form"
_CLOSERS = re.compile(r"</(script|style)", re.IGNORECASE)


def close_safe(text: str) -> str:
    """Escape `</script` and `</style` (only strings or regexes can hold them) and `<!--`."""
    return _CLOSERS.sub(lambda m: "<\\/" + m.group(1), text).replace("<!--", "<\\!--")


@lru_cache(maxsize=8)
def _read(path: Path, mtime: float) -> str:
    return close_safe(path.read_text("utf-8"))


def inline_script(name: str, static_dir: Path = STATIC_DIR) -> str:
    """The bundle `name` (e.g. `building.js`), ready to sit inside `<script>…</script>`.

    Read once per modification time. When it was not built (a source checkout without
    `npm run build`), a JavaScript comment that says so, and a warning in the log."""
    path = static_dir / name
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        log.warning("%s is not built: run `npm run build` in frontend/", path)
        return f"/* fancy_env: {close_safe(name)} not built (npm run build in frontend/) */"
    return _read(path, mtime)
