"""The command-line reference page: every console script of ``pyproject.toml``, each as its own ``--help`` prints it.

The commands come from ``[project.scripts]``, so a new one cannot be left out. An argparse command's help is
formatted in this process from its module's ``parser()``; ``seqadapt`` itself is Hydra's, so its ``--help`` runs
as the user would run it.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from unittest import mock

from seqadapt.cli import described

HELP_WIDTH = "110"


def console_scripts(pyproject: Path) -> dict[str, str]:
    """``{command: "module:function"}`` from ``[project.scripts]``, in the file's order."""
    return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["scripts"]


def help_text(target: str) -> str:
    """What the command of ``target`` (``module:function``) prints for ``--help``: its module's argparse
    ``parser()``, else the module run with ``--help``; wrapped at ``HELP_WIDTH`` columns either way."""
    module = importlib.import_module(target.split(":")[0])
    if hasattr(module, "parser"):
        with mock.patch.dict(os.environ, {"COLUMNS": HELP_WIDTH}):  # argparse wraps to the terminal's width
            return module.parser().format_help()
    result = subprocess.run([sys.executable, "-m", module.__name__, "--help"], capture_output=True, text=True,
                            timeout=300, check=True, env={**os.environ, "COLUMNS": HELP_WIDTH})
    return result.stdout


def render(pyproject: Path) -> str:
    """The whole page: a table of the commands, then each one's help in full."""
    scripts = console_scripts(pyproject)
    helps = {command: help_text(target) for command, target in scripts.items()}
    lines = ["# Command-line reference", "",
             "Generated when the site is built: each command's own `--help`, for every console script that",
             "`pyproject.toml` installs.", "", "| command | what it does |", "|---|---|"]
    for command, text in helps.items():
        lines.append(f"| [`{command}`](#{command}) | {_summary(command, text)} |")
    for command, text in helps.items():
        lines += ["", f"## `{command}` {{#{command}}}", "", "```text", text.rstrip(), "```"]
    return "\n".join(lines) + "\n"


def _summary(command: str, text: str) -> str:
    """The first paragraph after the usage (Hydra's: the header's first paragraph), as one table cell."""
    description = "\n\n".join(part for part in text.split("\n\n") if not part.strip().startswith("usage:"))
    return (described(description) or command).replace("|", "\\|")
