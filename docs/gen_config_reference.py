"""Generate docs/reference/config.md from the traits of every configurable class.

Run by docs/conf.py at build time, so the reference can never drift from the code: each
option's name, type, default and help string come from the trait itself.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from traitlets import HasTraits, TraitType

# (import path, class name, what it is, which traits: "own" = declared on the class itself)
CLASSES = [
    ("fancy_env.spawner_base", "FancySpawnerMixin", "Shared by both spawners", "own"),
    ("fancy_env.spawner_docker", "FancyDockerSpawner", "One machine (Docker)", "own"),
    ("fancy_env.spawner_kube", "FancyKubeSpawner", "Kubernetes", "own"),
    ("fancy_env.builder.app", "BuilderApp", "The build service", "own"),
    ("fancy_env.sharing.config", "FancyEnvSharing", "Sharing by link", "own"),
    ("fancy_env.sharing.binder_pages", "FancyEnvBinder", "Binder launch URLs", "own"),
    ("fancy_env.builder.credentials", "FancyEnvCredentials", "Private repositories", "own"),
]


def _default(trait: TraitType) -> str:
    try:
        value = trait.default_value_repr()
    except Exception:  # noqa: BLE001 - dynamic defaults have no static repr
        value = "(computed)"
    if len(value) > 80:
        value = value[:77] + "..."
    return value


def _own_traits(cls: type[HasTraits]) -> dict[str, TraitType]:
    traits = cls.class_own_traits(config=True)
    return dict(sorted(traits.items()))


def render() -> str:
    out = [
        "# Configuration reference",
        "",
        "Generated from the code at docs build time: every option is a traitlets trait, set in",
        "`jupyterhub_config.py` as `c.<Class>.<option> = ...`.",
        "",
    ]
    for module, name, what, _ in CLASSES:
        cls = getattr(importlib.import_module(module), name)
        out += [f"## `{name}`", "", f"{what} (`{module}.{name}`).", ""]
        traits = _own_traits(cls)
        if not traits:
            out += ["No options of its own; see the classes it builds on.", ""]
        for trait_name, trait in traits.items():
            help_text = (trait.help or "(no help string)").strip()
            out += [
                f"### `{name}.{trait_name}`",
                "",
                f"*{type(trait).__name__}*, default `{_default(trait)}`",
                "",
                help_text,
                "",
            ]
    return "\n".join(out)


def write(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render()
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


if __name__ == "__main__":
    write(Path(__file__).parent / "reference" / "config.md")
