"""A saved run_config.yaml is read as plain data: what seqadapt writes loads as it was; Python tags, interpolations,
links, oversized or bomb-like files are refused naming the file and key."""

import pytest
from omegaconf import OmegaConf

from seqadapt.io import NotARegularFileError
from seqadapt.saved_config import MAX_BYTES, SavedConfigError, config_text, load_saved_config
from tests.cli.test_train import FAST, compose_train


def test_a_config_as_seqadapt_writes_it_loads_as_the_same_values_and_without_its_resume(tmp_path):
    cfg = compose_train([*FAST, "tasks.order=[colors,animals]", "reference_accuracy={colors: 0.9}", "resume=/a/run"])
    (tmp_path / "run_config.yaml").write_text(config_text(OmegaConf.to_container(cfg, resolve=True)))  # as runs do
    loaded = load_saved_config(tmp_path / "run_config.yaml")
    assert OmegaConf.to_container(loaded) == {**OmegaConf.to_container(cfg, resolve=True), "resume": None}
    assert list(loaded) == list(cfg)  # the keys in the composed order, so a grown run's file equals a one-go run's


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("seed: !!python/object/apply:os.system [touch pwned]\n", r"it is not readable YAML .*python/object/apply"),
        ("run_name: ${oc.env:HOME}\n", r"'run_name' holds an interpolation \('\$\{oc.env:HOME\}'\)"),
        ("logger: {name: '\\${escaped}'}\n", r"'logger.name' holds an interpolation"),
        ("tasks: {order: [a, '${oc.decode:1}']}\n", r"'tasks.order\[1\]' holds an interpolation"),
        ("'${oc.env:HOME}': 1\n", r"key '\$\{oc.env:HOME\}' under '' is not a plain name"),
        ("seed: 2026-11-24\n", r"'seed' holds a date, not a plain value"),
        ("- a\n- b\n", r"it holds a list, not a mapping of settings"),
        ("a: " + "[" * 40 + "]" * 40 + "\n", r"it is nested deeper than 32"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", r"it is not readable YAML"),
    ],
    ids=["python-tag", "env", "escaped", "in-list", "key", "date", "list", "deep", "deeper-than-the-parser"],
)
def test_what_seqadapt_never_writes_is_refused_naming_the_key(tmp_path, text, refusal):
    (tmp_path / "run_config.yaml").write_text(text)
    with pytest.raises(SavedConfigError, match=rf"run_config.yaml: {refusal}.*plain data only"):
        load_saved_config(tmp_path / "run_config.yaml")


def test_a_billion_laughs_is_refused_before_it_is_expanded(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]  # 10^9 values once expanded
    (tmp_path / "run_config.yaml").write_text("\n".join(lines) + "\n")
    with pytest.raises(SavedConfigError, match=r"more than 100000 values"):
        load_saved_config(tmp_path / "run_config.yaml")


def test_an_oversized_file_is_refused_unread(tmp_path):
    (tmp_path / "run_config.yaml").write_text("run_name: " + "x" * MAX_BYTES + "\n")
    with pytest.raises(SavedConfigError, match=rf"larger than {MAX_BYTES} bytes"):
        load_saved_config(tmp_path / "run_config.yaml")


def test_a_linked_run_config_is_refused(tmp_path):
    (tmp_path / "elsewhere.yaml").write_text("seed: 0\n")
    (tmp_path / "run_config.yaml").symlink_to(tmp_path / "elsewhere.yaml")
    with pytest.raises(NotARegularFileError, match=r"run_config.yaml is a symbolic link"):
        load_saved_config(tmp_path / "run_config.yaml")
