"""Imports run one way and never in a circle (docs/internals.md "Layers").

Two checks, both over grimp's import graph of the package:

- import-linter's contracts in pyproject.toml (`[tool.importlinter]`): the layers
  (command line <- service <- sharing <- builder <- web <- hub side <- pure core; `exhaustive`,
  so a new top-level module must be placed in a layer) and `acyclic_siblings` (no cycle
  between sibling modules or packages at any depth);
- our own cycle check: no strongly connected set of modules at all.

Lazy imports are included. grimp reads every `import` statement in a module's AST, the ones
inside functions (and under `if TYPE_CHECKING:`) too, so an import deferred into a function
cannot hide a cycle: `test_a_lazy_import_is_seen` builds a package whose only import back up
is inside a function and shows that both import-linter and our check refuse it, and
`test_the_graph_has_our_own_lazy_imports` finds a real function-level import of ours in it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[2]


def lint_imports(cwd: Path, *args: str, pythonpath: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    script = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"
    return subprocess.run(
        [sys.executable, "-c", script, "--no-cache", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def cycles(package: str) -> list[set[str]]:
    """Sets of modules of `package` that import each other in a circle (Tarjan's SCC)."""
    graph = grimp.build_graph(package, cache_dir=None)
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                top = stack.pop()
                component.add(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(component)

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return found


def test_the_contracts_hold() -> None:
    result = lint_imports(REPO, pythonpath=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_no_module_is_in_an_import_cycle() -> None:
    assert cycles("fancy_env") == []


def test_the_graph_has_our_own_lazy_imports() -> None:
    """`fancy_env.cli` imports the build command inside `main` only: grimp still sees it."""
    source = (REPO / "fancy_env" / "cli.py").read_text()
    assert "\n        from .builder.cli_build import main_build" in source  # inside a function
    graph = grimp.build_graph("fancy_env", cache_dir=None)
    assert "fancy_env.builder.cli_build" in graph.find_modules_directly_imported_by("fancy_env.cli")


LAZY_CONFIG = """
[importlinter]
root_package = lazypkg

[importlinter:contract:layers]
name = high above low
type = layers
layers =
    lazypkg.high
    lazypkg.low

[importlinter:contract:acyclic]
name = no cycles
type = acyclic_siblings
ancestors =
    lazypkg
"""


@pytest.fixture
def lazy_package(tmp_path: Path) -> Path:
    """`high` imports `low` at the top; `low` imports `high` back only inside a function."""
    pkg = tmp_path / "lazypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "high.py").write_text("from . import low\n\nVALUE = low.twice(2)\n")
    (pkg / "low.py").write_text(
        textwrap.dedent("""
        def twice(n):
            return 2 * n


        def up():
            from . import high  # the lazy import that would hide the cycle

            return high.VALUE
    """)
    )
    (tmp_path / ".importlinter").write_text(LAZY_CONFIG)
    return tmp_path


def test_a_lazy_import_is_seen(lazy_package: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = lint_imports(lazy_package, pythonpath=lazy_package)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "high above low BROKEN" in result.stdout
    assert "no cycles BROKEN" in result.stdout
    assert "lazypkg.low -> lazypkg.high" in result.stdout
    monkeypatch.syspath_prepend(str(lazy_package))
    assert cycles("lazypkg") == [{"lazypkg.low", "lazypkg.high"}]
