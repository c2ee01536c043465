"""MkDocs hook: adds the pages generated from the code (configuration and CLI reference) to every build.

Named in ``mkdocs.yml`` under ``hooks``; the pages exist only in the built site, so they cannot go stale in git.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

sys.path.insert(0, str(Path(__file__).parent))

import cli_reference  # noqa: E402
import config_reference  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PAGES = {
    "reference/configuration.md": lambda: config_reference.render(ROOT / "conf"),
    "reference/cli.md": lambda: cli_reference.render(ROOT / "pyproject.toml"),
}


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Each generated page as a file of the site, written from the configs and commands of this checkout."""
    for path, render in PAGES.items():
        files.append(File.generated(config, path, content=render()))
    return files
