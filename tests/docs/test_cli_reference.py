"""The command-line reference page: every installed command, each with the help it prints itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs" / "hooks"))

import cli_reference  # noqa: E402


def test_every_console_script_is_listed():
    scripts = cli_reference.console_scripts(ROOT / "pyproject.toml")
    assert {"seqadapt", "seqadapt-predict", "seqadapt-verify", "seqadapt-serve", "seqadapt-export"} <= set(scripts)
    assert all(":" in target for target in scripts.values())


def test_help_on_the_page_is_what_the_command_prints():
    scripts = cli_reference.console_scripts(ROOT / "pyproject.toml")
    printed = subprocess.run([str(Path(sys.executable).parent / "seqadapt-tasks"), "--help"], capture_output=True,
                             text=True, check=True, env={**os.environ, "COLUMNS": cli_reference.HELP_WIDTH}).stdout
    assert cli_reference.help_text(scripts["seqadapt-tasks"]) == printed
    assert printed.startswith("usage: seqadapt-tasks")
