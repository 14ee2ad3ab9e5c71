"""Sphinx configuration for the fancy_env docs."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import gen_config_reference  # noqa: E402

project = "fancy_env"
author = "fancy_env contributors"
extensions = ["myst_parser", "sphinx.ext.autodoc"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path = ["_static"]
suppress_warnings = ["myst.header"]

gen_config_reference.write(Path(__file__).parent / "reference" / "config.md")
