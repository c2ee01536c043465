from collections import Counter

import pytest
from datasets import Dataset

from seqadapt.data import SplitSizes, TaskDataError, TaskSpec, build_splits, load_task_spec, read_source

SPEC = TaskSpec(name="t", labels=("neg", "pos"), source={"kind": "local_files", "files": {}})


def frame(labels, text="some text"):
    return Dataset.from_dict({"text": [f"{text} {i}" for i in range(len(labels))], "label": labels})


def test_splits_are_deterministic_and_disjoint():
    spec = load_task_spec("trec")
    frames = read_source(spec)
    first = build_splits(spec, frames, SplitSizes(train=300, val=50, test=100, seed=3))
    second = build_splits(spec, frames, SplitSizes(train=300, val=50, test=100, seed=3))
    other = build_splits(spec, frames, SplitSizes(train=300, val=50, test=100, seed=4))
    assert first == second
    assert first.test != other.test
    assert (len(first.train), len(first.val), len(first.test)) == (300, 50, 100)
    texts = Counter(frames["all"]["text"])
    repeated_in_source = {text for text, count in texts.items() if count > 1}  # TREC repeats a few questions verbatim
    assert not (set(first.test["text"]) & set(first.train["text"])) - repeated_in_source


def test_source_test_split_is_kept_as_test_pool():
    frames = {"train": frame(["neg", "pos"] * 50, "train"), "test": frame(["neg", "pos"] * 10, "test")}
    splits = build_splits(SPEC, frames, SplitSizes(train=None, val=10, test=None))
    assert len(splits.test) == 20 and all(t.startswith("test") for t in splits.test["text"])
    assert len(splits.train) + len(splits.val) == 100


def test_labels_outside_the_declared_set_are_refused_with_counts():
    with pytest.raises(TaskDataError, match=r"2 rows have labels outside the declared set \['neg', 'pos'\]: \{'meh': 2\}"):
        build_splits(SPEC, {"all": frame(["neg", "pos", "meh", "meh"] * 1)}, SplitSizes())


def test_label_map_and_drop_labels():
    spec = TaskSpec(name="t", labels=("neg", "pos"), source={}, label_map={"0": "neg", "1": "pos"}, drop_labels=("x",))
    splits = build_splits(spec, {"all": frame(["0", "1", "x"] * 20)}, SplitSizes(train=None, val=None, test=10))
    assert len(splits.train) + len(splits.test) == 40


def test_empty_training_data_is_refused():
    spec = TaskSpec(name="t", labels=("neg", "pos"), source={}, drop_labels=("neg", "pos"))
    with pytest.raises(TaskDataError, match="no training examples"):
        build_splits(spec, {"all": frame(["neg", "pos"] * 10)}, SplitSizes())


def test_single_class_training_data_is_refused():
    frames = {"train": frame(["pos"] * 30), "test": frame(["neg", "pos"] * 5)}
    with pytest.raises(TaskDataError, match="all 24 training examples have the label 'pos'"):
        build_splits(SPEC, frames, SplitSizes(val=6))


def test_missing_text_column_names_the_columns():
    bad = Dataset.from_dict({"body": ["x"] * 10, "label": ["neg", "pos"] * 5})
    with pytest.raises(TaskDataError, match=r"column 'text' is not in the data \(columns: \['body', 'label'\]\)"):
        build_splits(SPEC, {"all": bad}, SplitSizes())


def test_a_lone_train_file_is_split_into_train_val_and_test():
    splits = build_splits(SPEC, {"train": frame(["neg", "pos"] * 50)}, SplitSizes(train=None, val=10, test=20))
    assert (len(splits.train), len(splits.val), len(splits.test)) == (70, 10, 20)


def test_unknown_split_names_are_refused():
    with pytest.raises(TaskDataError, match=r"gives the split\(s\) \['dev', 'validation'\]; name the files 'train'"):
        build_splits(SPEC, {"validation": frame(["neg", "pos"]), "dev": frame(["neg", "pos"])}, SplitSizes())
