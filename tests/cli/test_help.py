"""Every command's ``--help`` reads as plain text: the docstring's reST markup stays in the docstring."""

import importlib
import re
import tomllib
from pathlib import Path

from seqadapt.cli import described

ROOT = Path(__file__).resolve().parents[2]


def test_every_argparse_command_prints_plain_help_under_its_own_name():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for command, target in scripts.items():
        module = importlib.import_module(target.split(":")[0])
        if not hasattr(module, "parser"):  # seqadapt itself: Hydra's --help
            continue
        text = module.parser().format_help()
        assert text.startswith(f"usage: {command}"), command
        assert not re.search(r"``|:mod:|:func:|:class:", text), (command, text[:300])


def test_a_docstring_paragraph_becomes_one_plain_line():
    doc = """``tool DIR``: does a thing
    over two lines.

    More detail that --help leaves to the documentation.
    """
    assert described(doc) == "tool DIR: does a thing over two lines."
