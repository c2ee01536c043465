import hashlib
import json
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


# SHA-256 of json.dumps(split.to_dict()) with the default SplitSizes, computed before drop_leaked existed:
# with drop_leaked off, the selection must stay bit for bit what it was (runs are compared by their hashes).
SELECTION_BEFORE_DROP_LEAKED = {
    "sms_spam": {  # one 'all' file, split by seqadapt
        "train": "53f0a67e60d62fcd6836792f402b969acb41a11e0b5b6baafe4952cbb9744a6b",
        "val": "e2afa58e733b23ad994a885f9a0065e482e35ca534e67c2e900de0dcc970897e",
        "test": "016ec78fb3cbb103a5b851dd6a8444ba3c23ade87117e5368657fb058a1c8398",
    },
    "reuters_r8": {  # the source's own train and test files
        "train": "143895a6dfbae18d5c6bcfc163397409a8b7b9085037742d35f7e964fee3270e",
        "val": "6c4ecee26a6408bc53bd450741394038cb79fa0adeea322d04fcaf2c11839676",
        "test": "ad22e9322bf86eee9017e5b1a48586c3eb9bc1602ceeb8e3b178f5a9c43e2d23",
    },
}


@pytest.mark.parametrize("task", sorted(SELECTION_BEFORE_DROP_LEAKED))
def test_without_drop_leaked_the_selection_is_bit_for_bit_unchanged(task):
    spec = load_task_spec(task)
    splits = build_splits(spec, read_source(spec), SplitSizes(drop_leaked=False))
    hashes = {split: hashlib.sha256(json.dumps(getattr(splits, split).to_dict()).encode()).hexdigest()
              for split in ("train", "val", "test")}
    assert hashes == SELECTION_BEFORE_DROP_LEAKED[task]


def test_drop_leaked_removes_texts_of_later_splits_and_keeps_the_rest_in_order():
    texts = [f"unique {i}" for i in range(80)] + [f"twice {i}" for i in range(10)] * 2
    raw = {"all": Dataset.from_dict({"text": texts, "label": ["neg", "pos"] * 50})}
    sizes = SplitSizes(train=None, val=15, test=20, seed=1)
    kept = build_splits(SPEC, raw, sizes)
    dropped = build_splits(SPEC, raw, SplitSizes(train=None, val=15, test=20, seed=1, drop_leaked=True))
    train, val, test = (set(getattr(kept, split)["text"]) for split in ("train", "val", "test"))
    assert (train & test) or (train & val) or (val & test)  # the seed does leak some of the repeated texts
    assert dropped.test.to_dict() == kept.test.to_dict()
    assert dropped.val.to_dict() == kept.val.filter(lambda row: row["text"] not in test).to_dict()
    assert dropped.train.to_dict() == kept.train.filter(lambda row: row["text"] not in test | val).to_dict()
    assert len(dropped.train) < len(kept.train)


def test_a_declared_label_missing_from_train_warns_naming_task_and_label():
    spec = TaskSpec(name="t", labels=("neg", "pos", "meh"), source={})
    with pytest.warns(UserWarning, match=r"task 't': declared label\(s\) \['meh'\] never occur in its 80 training"):
        build_splits(spec, {"train": frame(["neg", "pos"] * 50)}, SplitSizes(train=None, val=0, test=20))
