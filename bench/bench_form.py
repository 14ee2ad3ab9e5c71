"""Benchmark of the spawn form: bundle size and time to an interactive form.

    python bench/bench_form.py [--quick] [--loads N]

1. Total JS + CSS of the form, gzip (level 9): our production bundle
   (`fancy_env/static/form/`) against the static files of the jupyterhub-fancy-profiles 0.7.0
   wheel, downloaded at bench time with `pip download --no-deps`.
2. Time from navigation to an interactive form in headless Chromium, median of N cold loads
   (a new browser context per load, so the HTTP cache is empty; the login cookie is reused).
   One real JupyterHub renders all three forms in the same run: a bench spawner (a
   `FancyKubeSpawner` with a dummy KUBECONFIG, no cluster is contacted) picks the form by user
   name: KubeSpawner's plain form, fancy-profiles 0.7.0 (its unpacked wheel on the hub's
   PYTHONPATH, its static route added the way its `setup_ui(c)` does), or ours.
   "Interactive" = the profile radios of that form are in the DOM and the page has finished
   parsing (fancy-profiles and ours render them from JavaScript).
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.browser import fill_login, launch_chromium  # noqa: E402
from tests.support.hub import HubProcess  # noqa: E402

FANCY_PROFILES = "jupyterhub-fancy-profiles==0.7.0"
# "interactive" per form: its profile radios exist and the document finished parsing
READY = {
    "plain": "#kubespawner-profiles-list input[name=profile]",
    "fancy-profiles": "#form input[name=profile], #form [role=radio]",
    "ours": ".fancy-env-form input[name=profile]",
}
INIT_SCRIPT = """
window.__ready = null;
(() => {
  const sel = %s;
  const check = () => {
    if (window.__ready === null && document.readyState !== "loading" &&
        document.querySelector(sel)) window.__ready = performance.now();
  };
  new MutationObserver(check).observe(document, {subtree: true, childList: true});
  document.addEventListener("DOMContentLoaded", check);
  window.addEventListener("load", check);
})();
"""

KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: dummy, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: dummy, user: {token: dummy}}]
contexts: [{name: dummy, context: {cluster: dummy, user: dummy, namespace: bench}}]
current-context: dummy
"""

HUB_CONFIG = """
import os
from kubespawner import KubeSpawner
from fancy_env.spawner_base import FancySpawnerMixin
from fancy_env.spawner_kube import FancyKubeSpawner

FANCY_ROOT = os.environ["BENCH_FANCY_PROFILES"]

class BenchSpawner(FancyKubeSpawner):
    '''Renders one of three forms for the same profile_list, chosen by the user's name.'''

async def bench_form(spawner):
    name = spawner.user.name
    if name.startswith("ours"):
        return await FancySpawnerMixin._fancy_render_options_form(spawner)
    paths = []
    if name.startswith("fancy"):
        paths = [os.path.join(FANCY_ROOT, "jupyterhub_fancy_profiles", "templates")]
    spawner.additional_profile_form_template_paths = paths
    return KubeSpawner._render_options_form(spawner, spawner.profile_list)

c.JupyterHub.spawner_class = BenchSpawner
c.BenchSpawner.options_form = bench_form
c.KubeSpawner.profile_list = PROFILES
try:
    from jupyterhub_fancy_profiles import STATIC_HANDLER_TUPLE
    c.JupyterHub.extra_handlers = [STATIC_HANDLER_TUPLE]
except ImportError as e:
    print("fancy-profiles not importable:", e)
"""

PROFILES = [
    {
        "display_name": "Small",
        "slug": "small",
        "description": "1 CPU, 2 GB of memory",
        "default": True,
        "kubespawner_override": {"cpu_limit": 1, "mem_limit": "2G"},
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    "py": {
                        "display_name": "Python",
                        "default": True,
                        "kubespawner_override": {"image": "quay.io/jupyter/base-notebook:latest"},
                    },
                    "r": {
                        "display_name": "R",
                        "kubespawner_override": {"image": "quay.io/jupyter/r-notebook:latest"},
                    },
                },
                "unlisted_choice": {
                    "enabled": True,
                    "display_name": "Custom image",
                    "validation_regex": r"quay\.io/[a-z/-]+:[a-z0-9.]+",
                    "validation_message": "a quay.io image with a tag",
                    "kubespawner_override": {"image": "{value}"},
                },
            }
        },
    },
    {
        "display_name": "Large",
        "slug": "large",
        "description": "4 CPU, 16 GB of memory",
        "kubespawner_override": {"cpu_limit": 4, "mem_limit": "16G"},
    },
]


def gz(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9))


def measure_files(files: list[Path]) -> tuple[int, int]:
    raw = sum(f.stat().st_size for f in files)
    return raw, sum(gz(f.read_bytes()) for f in files)


def fetch_fancy_profiles(dest: Path) -> tuple[Path | None, str]:
    """Download and unpack the 0.7.0 wheel; (unpacked root, '') or (None, why not)."""
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                FANCY_PROFILES,
                "-d",
                str(dest),
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except (subprocess.SubprocessError, OSError) as e:
        err = getattr(e, "stderr", "") or str(e)
        return None, f"pip download failed: {err.strip().splitlines()[-1:]}"
    wheels = list(dest.glob("*.whl"))
    if not wheels:
        return None, "pip download produced no wheel"
    root = dest / "unpacked"
    with zipfile.ZipFile(wheels[0]) as z:
        z.extractall(root)
    return root, ""


SIZE_GOAL_KB = 80.0
TTI_GOAL = 1.2  # times the plain form


def size_rows(fancy_root: Path | None, why: str) -> list[tuple[str, ...]]:
    ours = [ROOT / "fancy_env/static/form/form.js", ROOT / "fancy_env/static/form/form.css"]
    ours = [f for f in ours if f.exists()]
    rows: list[tuple[str, ...]] = []
    if ours:
        raw, z = measure_files(ours)
        goal = f"≤ {SIZE_GOAL_KB:.0f} KB: " + ("met" if z / 1024 <= SIZE_GOAL_KB else "MISSED")
        rows.append(("ours (form.js + form.css)", f"{raw / 1024:.1f}", f"{z / 1024:.1f}", goal))
    else:
        rows.append(("ours", "not built", "run `npm run build` in frontend/", "-"))
    if fancy_root is not None:
        static = fancy_root / "jupyterhub_fancy_profiles" / "static"
        files = sorted(p for p in static.rglob("*") if p.suffix in (".js", ".css"))
        raw, z = measure_files(files)
        rows.append(
            (
                f"fancy-profiles 0.7.0 wheel ({len(files)} files)",
                f"{raw / 1024:.1f}",
                f"{z / 1024:.1f}",
                "-",
            )
        )
    else:
        rows.append(("fancy-profiles 0.7.0", "n/a", why, "-"))
    return rows


def start_hub(state: Path, fancy_root: Path | None) -> HubProcess:
    kubeconfig = state / "kubeconfig"
    state.mkdir(parents=True, exist_ok=True)
    kubeconfig.write_text(KUBECONFIG)
    pythonpath = [str(ROOT)] + ([str(fancy_root)] if fancy_root else [])
    config = f"PROFILES = {PROFILES!r}\n" + textwrap.dedent(HUB_CONFIG)
    env = {
        "KUBECONFIG": str(kubeconfig),
        "PYTHONPATH": os.pathsep.join(pythonpath),
        "BENCH_FANCY_PROFILES": str(fancy_root or ""),
    }
    return HubProcess(state / "hub", config=config, base_url="/", env=env).start()


def time_loads(
    hub: HubProcess, chromium: str, forms: list[str], loads: int
) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    results: dict[str, list[float]] = {f: [] for f in forms}
    with sync_playwright() as p:
        browser = launch_chromium(p, chromium)
        states = {}
        for form in forms:
            user = {"plain": "plain", "fancy-profiles": "fancy", "ours": "ours"}[form]
            ctx = browser.new_context()
            page = ctx.new_page()
            page.goto(hub.url + "hub/login")
            fill_login(page, user)
            page.wait_for_url("**/hub/spawn**")
            states[form] = ctx.storage_state()
            ctx.close()
        for i in range(loads + 1):  # load 0 warms the hub (templates, imports): not counted
            for form in forms:  # interleaved, so drift hits all three alike
                ctx = browser.new_context(storage_state=states[form])
                ctx.add_init_script(INIT_SCRIPT % repr(READY[form]))
                page = ctx.new_page()
                page.goto(hub.url + "hub/spawn", wait_until="commit")
                ms = page.wait_for_function("() => window.__ready", timeout=30_000).json_value()
                if i > 0:
                    results[form].append(float(ms))
                ctx.close()
        browser.close()
    return results


def print_table(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(" --- " for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 loads per form instead of 20")
    parser.add_argument("--loads", type=int, default=0, help="loads per form (overrides)")
    args = parser.parse_args(argv)
    loads = args.loads or (8 if args.quick else 20)
    if not (ROOT / "fancy_env/static/form/form.js").exists():
        print("the form is not built: run `npm ci && npm run build` in frontend/", file=sys.stderr)
        return 1
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with tempfile.TemporaryDirectory(prefix="bench-form-") as tmp:
        fancy_root, why = fetch_fancy_profiles(Path(tmp) / "wheel")
        print_table(
            "Form bundle: total JS + CSS (KB)",
            ("form", "raw KB", "gzip KB", "goal"),
            size_rows(fancy_root, why),
        )
        forms = ["plain", "ours"] + (["fancy-profiles"] if fancy_root else [])
        hub = start_hub(Path(tmp), fancy_root)
        try:
            results = time_loads(hub, chromium, forms, loads)
        finally:
            hub.stop()
    plain = statistics.median(results["plain"])
    rows = []
    for form in ["plain", "ours", "fancy-profiles"]:
        if form not in results:
            rows.append((form, "n/a", "n/a", f"not measured: {why}", "-"))
            continue
        med = statistics.median(results[form])
        rows.append(
            (
                form,
                f"{med:.0f}",
                f"{min(results[form]):.0f}–{max(results[form]):.0f}",
                f"{med / plain:.2f}×",
                ("-" if form != "ours" else f"≤ {TTI_GOAL}×: ")
                + ("" if form != "ours" else ("met" if med / plain <= TTI_GOAL else "MISSED")),
            )
        )
    print_table(
        f"Time to an interactive form, headless Chromium, cold cache, median of {loads} loads",
        ("form", "median ms", "range ms", "vs plain", "goal"),
        rows,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
