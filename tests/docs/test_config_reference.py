"""The configuration reference page: every key Hydra composes is on it, with its default and a meaning."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs" / "hooks"))

import config_reference  # noqa: E402

CONF = ROOT / "conf"


def leaf_keys(node, prefix: str = "") -> set[str]:
    """Dotted keys of the leaves of a composed config (an empty mapping is a leaf)."""
    if isinstance(node, dict) and node:
        return set().union(*(leaf_keys(child, f"{prefix}.{key}" if prefix else key) for key, child in node.items()))
    return {prefix}


def table_rows(page: str) -> dict[str, list[tuple[str, str]]]:
    """``{section id: [(key, meaning), ...]}`` from the page's key tables."""
    rows: dict[str, list[tuple[str, str]]] = {}
    section = ""
    for line in page.splitlines():
        heading = re.match(r"^###? .*?(?:\{#(?P<id>[\w-]+)\})?$", line)
        if heading:
            section = heading.group("id") or line
        cells = re.match(r"^\| `(?P<key>[^`]+)` \| `.*` \| (?P<meaning>.*) \|$", line)
        if cells:
            rows.setdefault(section, []).append((cells.group("key"), cells.group("meaning").strip()))
    return rows


def test_every_composed_key_is_documented_with_a_meaning():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        composed = OmegaConf.to_container(compose(config_name="train"), resolve=False)
    rows = table_rows(config_reference.render(CONF))
    defaults = ["## Top-level keys (`conf/train.yaml`)", "backbone-minilm", "adapter-houlsby", "tasks-default", "data-default", "trainer-default",
                "strategy-adapter", "logger-wandb", "callbacks-default"]
    documented = {key: meaning for section in defaults for key, meaning in rows[section]}
    missing = sorted(leaf_keys(composed) - set(documented))
    assert not missing, f"composed keys without a row on the page: {missing}"
    assert not [key for key, meaning in documented.items() if not meaning]


def test_every_option_of_every_group_has_a_section_whose_keys_all_have_meanings():
    page = config_reference.render(CONF)
    rows = table_rows(page)
    for group in (path for path in CONF.iterdir() if path.is_dir()):
        for option in group.glob("*.yaml"):
            anchor = f"{group.name}-{option.stem.replace('_', '-')}"
            assert f"{{#{anchor}}}" in page, anchor
            assert all(meaning for _, meaning in rows.get(anchor, [])), (anchor, rows.get(anchor))


def test_comments_are_read_from_where_yaml_authors_put_them(tmp_path):
    (tmp_path / "example.yaml").write_text(
        "# @package _global_\n"
        "# What this option is for.\n"
        "#   seqadapt group=example\n"
        "alpha: 1   # inline\n"
        "           # and continued\n"
        "# above beta\n"
        "beta:\n"
        "  gamma: 'a # not a comment'\n"
        "\n"
        "delta: [1, 2]\n"
    )
    read = config_reference.read_config_file(tmp_path / "example.yaml", "group")
    assert read.package == "_global_"
    assert read.description == "What this option is for.\n  seqadapt group=example"
    assert read.values == {"alpha": 1, "beta.gamma": "a # not a comment", "delta": [1, 2]}
    assert read.comments == {"alpha": "inline and continued", "beta": "above beta"}
    assert config_reference.meaning_of("beta.gamma", read, {}) == "above beta"
    assert config_reference.meaning_of("delta", read, {"delta": "from the defining file"}) == "from the defining file"


def test_a_group_file_puts_its_keys_under_the_group(tmp_path):
    (tmp_path / "small.yaml").write_text("# A data option.\ntrain_size: 10  # rows\n")
    read = config_reference.read_config_file(tmp_path / "small.yaml", "data")
    assert read.values == {"data.train_size": 10} and read.comments == {"data.train_size": "rows"}
