#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script).
# Sets up the machine (idempotent), installs the package with its test extras, builds the
# form, lints and type-checks, runs the Python and frontend tests, builds the docs, and runs
# the benchmarks in their quick mode.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$HERE"
export FANCY_ENV_ARTIFACTS="${FANCY_ENV_ARTIFACTS:-$HERE/test-artifacts}"
step() { printf '\n==== %s (%(%H:%M:%S)T)\n' "$*" -1; }

step "machine set-up"
bash scripts/setup.sh --test
# the PostgreSQL test cluster setup.sh --test started (tests/support/db.py uses it)
export FANCY_ENV_TEST_PG_URL="${FANCY_ENV_TEST_PG_URL:-$(cat "${FANCY_ENV_STATE:-$([[ $(id -u) == 0 ]] && echo /var/lib/fancy-env || echo "$HOME/.local/state/fancy-env")}/postgres-test.url")}"

step "frontend: install, type-check, unit tests, production bundle"
if [[ -f frontend/package.json ]]; then
  (cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run lint && npm test && npm run build)
fi

step "python package"
python3 -m pip install -q -e ".[test,lint,docs]"

step "lint and type-check"
ruff check fancy_env tests bench
ruff format --check fancy_env tests bench
mypy
lint-imports --no-cache  # [tool.importlinter]: the layers, no cycles (also tests/unit/test_import_layers.py)

step "pytest"
set +e
python3 -m pytest -ra -p no:cacheprovider "$@"
rc=$?
set -e
if [[ $rc == 5 ]]; then echo "pytest collected no tests: that is a failure" >&2; exit 1; fi
[[ $rc == 0 ]] || exit $rc

step "docs"
python3 -m sphinx -q -W --keep-going -b html docs docs/_build/html

step "benchmarks (quick mode)"
if [[ -x bench/run ]]; then bench/run --quick; fi
step "all green"
