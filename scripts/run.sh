#!/usr/bin/env bash
# The README's main command: set up this machine (idempotent and quick the second time),
# install fancy_env from this checkout if needed, and run a complete hub until Ctrl-C.
#
#   bash scripts/run.sh                      hub on http://127.0.0.1:8000/
#   bash scripts/run.sh --port 9000 --config my_jupyterhub_config.py
#
# Every argument goes to `fancy-env up` (see `fancy-env up --help-all`).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$HERE"
PYTHON="${PYTHON:-python3}"

bash scripts/setup.sh

installed_here() {
  [[ -f fancy_env/static/form/form.js ]] || return 1
  "$PYTHON" - "$HERE" <<'PY' 2>/dev/null
import sys, pathlib, importlib.metadata, fancy_env
importlib.metadata.version("fancy-env")  # installed (not only importable from the cwd)
sys.exit(0 if pathlib.Path(fancy_env.__file__).resolve().is_relative_to(sys.argv[1]) else 1)
PY
}
if ! installed_here; then
  echo "[run] installing fancy_env from $HERE (pip install -e .; builds the form once)"
  "$PYTHON" -m pip install -q -e . </dev/null
fi
# the same as `fancy-env up`, without depending on where pip put the console script
exec "$PYTHON" -m fancy_env.cli up "$@"
