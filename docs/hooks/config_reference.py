"""The configuration reference page, generated from ``conf/`` so that it cannot drift from the configs.

Each key's meaning is the comment the YAML file gives it: on its line (continued on deeper-indented comment lines
below) or on the comment lines just above it. A key an option file sets without a comment (an experiment setting
``data.train_size``) borrows the meaning from the file that defines the key. Each file's own leading comment
(``# @package`` lines aside) describes the option.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w.-]*)\s*:(?P<rest>.*)$")
COMMENT_LINE = re.compile(r"^(?P<indent> *)#\s?(?P<text>.*)$")
HYDRA_KEYS = {  # Hydra's own keys, where a config sets one without saying why (by prefix; none overlap)
    "hydra.sweeper.params.": "swept: one job per comma-separated value (and per combination), as `-m` would",
    "hydra.mode": "MULTIRUN: the experiment runs as a sweep without `-m`",
    "hydra.sweep.dir": "the folder the sweep's jobs are written under, one subfolder each",
    "hydra.sweep.subdir": "each job's subfolder of hydra.sweep.dir",
    "hydra.run.dir": "the run folder: results.json, plots, artefacts, train.log",
    "hydra.job.chdir": "false: the working directory stays where seqadapt was started",
    "hydra.callbacks.": "a Hydra callback (here: the report written when the sweep ends)",
}
GROUP_ORDER = ("backbone", "adapter", "tasks", "data", "trainer", "strategy", "logger", "callbacks", "experiment")


@dataclass
class ConfigFile:
    """One YAML file of ``conf/``: its description, the full key of each value it sets, and their comments."""

    path: Path
    package: str
    description: str
    values: dict[str, Any] = field(default_factory=dict)
    comments: dict[str, str] = field(default_factory=dict)
    group_comments: dict[str, str] = field(default_factory=dict)


def _inline_comment(rest: str) -> str:
    """The comment in ``rest``, what follows ``key:`` on its line: from a ``#`` after a blank, outside quotes."""
    quote = None
    for index, char in enumerate(rest):
        if char in "\"'" and quote in (None, char):
            quote = None if quote else char
        elif char == "#" and quote is None and (index == 0 or rest[index - 1] in " \t"):
            return rest[index + 1:].strip()
    return ""


def _leaves(value: Any, prefix: str) -> dict[str, Any]:
    """Dotted keys of every leaf of a loaded mapping (an empty mapping or any list counts as a leaf)."""
    if isinstance(value, dict) and value:
        leaves: dict[str, Any] = {}
        for key, child in value.items():
            leaves.update(_leaves(child, f"{prefix}.{key}" if prefix else str(key)))
        return leaves
    return {prefix: value}


def _comments(lines: list[str], prefix: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """The file's leading comment, each key's comment (full dotted key), and the comments of ``defaults`` entries."""
    header: list[str] = []
    pending: list[str] = []
    comments: dict[str, str] = {}
    group_comments: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    last: tuple[int, str] | None = None  # (indent, key) of the key line whose comment may continue below
    seen_key = False
    for line in lines:
        comment, key_line = COMMENT_LINE.match(line), KEY_LINE.match(line)
        entry = re.match(r"^\s*-\s*(?:override\s+)?/?(?P<group>[\w/]+)\s*:.*?#\s?(?P<text>.*)$", line)
        if comment:
            text = comment.group("text")
            if text.startswith("@package"):
                continue
            if not seen_key:
                header.append(text)
            elif last and len(comment.group("indent")) > last[0] and last[1] in comments:
                comments[last[1]] += " " + text.strip()
            else:
                pending.append(text.strip())
                last = None
            continue
        if entry:
            group_comments[entry.group("group")] = entry.group("text").strip()
        if not key_line:
            last = None if line.strip() else last
            pending = [] if not line.strip() else pending
            continue
        seen_key = True
        indent = len(key_line.group("indent"))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key_line.group("key")))
        dotted = ".".join(part for part in [prefix, *(name for _, name in stack)] if part)
        text = " ".join([*pending, _inline_comment(key_line.group("rest"))]).strip()
        if text:
            comments[dotted] = text
        pending, last = [], (indent, dotted)
    return "\n".join(header).strip(), comments, group_comments


def read_config_file(path: Path, group: str | None) -> ConfigFile:
    """A file of ``conf/`` read for the reference: values under their full keys, comments beside them."""
    text = path.read_text(encoding="utf-8")
    package = "_global_" if group is None or "# @package _global_" in text else group
    prefix = "" if package == "_global_" else package
    loaded = yaml.safe_load(text)
    loaded = {key: value for key, value in loaded.items() if key != "defaults"} if isinstance(loaded, dict) else {}
    values = {key: value for key, value in _leaves(loaded, prefix).items() if key}
    description, comments, group_comments = _comments(text.splitlines(), prefix)
    if values == {prefix: {}} and description:  # a group that is one empty mapping (callbacks): what goes in it
        comments.setdefault(prefix, description.splitlines()[0])
    return ConfigFile(path, package, description, values, comments, group_comments)


def read_conf(conf_dir: Path) -> tuple[ConfigFile, dict[str, list[ConfigFile]]]:
    """``train.yaml`` and every group's option files, groups in the order a run composes them."""
    primary = read_config_file(conf_dir / "train.yaml", None)
    names = sorted(path.name for path in conf_dir.iterdir() if path.is_dir())
    ordered = [name for name in GROUP_ORDER if name in names] + [name for name in names if name not in GROUP_ORDER]
    groups = {name: [read_config_file(path, name) for path in sorted((conf_dir / name).glob("*.yaml"))]
              for name in ordered}
    return primary, groups


def meanings(primary: ConfigFile, groups: dict[str, list[ConfigFile]], defaults: dict[str, str]) -> dict[str, str]:
    """Every commented key's meaning, the file that defines a key first: ``train.yaml``, each group's default."""
    files = [primary] + [option for name, options in groups.items() for option in options
                         if option.path.stem == defaults.get(name)]
    files += [option for options in groups.values() for option in options if option not in files]
    found: dict[str, str] = {}
    for config_file in files:
        for key, text in config_file.comments.items():
            found.setdefault(key, text)
    return found


def group_defaults(conf_dir: Path) -> dict[str, str]:
    """The option each group takes when nothing is said (``defaults`` of ``train.yaml``)."""
    entries = yaml.safe_load((conf_dir / "train.yaml").read_text(encoding="utf-8")).get("defaults", [])
    return {name: "null" if option is None else str(option)
            for entry in entries if isinstance(entry, dict) for name, option in entry.items()}


def _value(value: Any) -> str:
    """A value as YAML writes it inline, in backticks for the table."""
    if value is None or isinstance(value, (bool, int, float)):
        text = yaml.safe_dump(value).splitlines()[0]
    elif isinstance(value, str):
        text = value
    else:
        text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    return "`" + text.replace("|", "\\|") + "`"


def _anchor(group: str, option: str) -> str:
    """The id of an option's section, as the groups table links to it."""
    return f"{group}-{option.replace('_', '-')}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def meaning_of(key: str, config_file: ConfigFile, known: dict[str, str]) -> str:
    """The key's comment in this file, else in the file defining it; a key inside a mapping (``data.task_sizes.x``)
    takes its mapping's. Hydra's own keys without a comment point at Hydra's documentation."""
    parts = key.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        text = config_file.comments.get(candidate) or known.get(candidate)
        if text:
            return text
    hydra = [text for prefix, text in HYDRA_KEYS.items() if key.startswith(prefix)]
    return hydra[0] if hydra else ("Hydra's own setting (see hydra.cc)" if key.startswith("hydra.") else "")


def _key_table(config_file: ConfigFile, known: dict[str, str]) -> list[str]:
    """The keys a file sets, their values and meanings (the file's own comment first, else the defining file's)."""
    if not config_file.values:
        return ["Sets no keys."]
    rows = ["| key | value | meaning |", "|---|---|---|"]
    for key, value in config_file.values.items():
        rows.append(f"| `{key}` | {_value(value)} | {_cell(meaning_of(key, config_file, known))} |")
    return rows


def render(conf_dir: Path) -> str:
    """The whole reference page: top-level keys, then every group and each of its options with the keys it sets."""
    primary, groups = read_conf(conf_dir)
    defaults = group_defaults(conf_dir)
    known = meanings(primary, groups, defaults)
    lines = ["# Configuration reference", "",
             "Generated from `conf/` when the site is built: every key's default is the value in its file and its",
             "meaning the comment beside it there, so this page changes when the configs do. Set a key with",
             "`seqadapt key=value` (`data.train_size=500`), pick a group's option with `seqadapt group=option`",
             "(`adapter=lora`), print the composed config with `seqadapt --cfg job`.", "",
             "## Top-level keys (`conf/train.yaml`)", "", "```text", primary.description, "```", ""]
    top = ConfigFile(primary.path, primary.package, "",
                     {key: value for key, value in primary.values.items()
                      if not key.startswith(("hydra.job_logging", "hydra.help."))},
                     primary.comments)
    lines += [*_key_table(top, known), "", "## Config groups", "",
              "| group | default | options | what it picks |", "|---|---|---|---|"]
    for name, options in groups.items():
        choices = ", ".join(f"[`{option.path.stem}`](#{_anchor(name, option.path.stem)})" for option in options)
        lines.append(f"| `{name}` | `{defaults.get(name, '-')}` | {choices} | "
                     f"{_cell(primary.group_comments.get(name, f'not composed by default: add an option with `+{name}=OPTION`'))} |")
    for name, options in groups.items():
        lines += ["", f"## `{name}`", ""]
        for option in options:
            default = " (default)" if option.path.stem == defaults.get(name) else ""
            lines += [f"### `{name}={option.path.stem}`{default} {{#{_anchor(name, option.path.stem)}}}", "",
                      f"`conf/{name}/{option.path.name}`" + (", keys at the top level (`@package _global_`)"
                                                             if option.package == "_global_" else "") + ".", ""]
            if option.description:
                lines += ["```text", option.description, "```", ""]
            lines += [*_key_table(option, known), ""]
    return "\n".join(lines) + "\n"
