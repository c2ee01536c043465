"""seqadapt.data.check: the report a task definition and its data amount to, on toy tasks and the bundled trec."""

import csv
from pathlib import Path
from collections import Counter

import pytest
from datasets import Dataset
import yaml

from seqadapt.data import SplitSizes, build_splits, load_task_spec, read_source
from seqadapt.data.check import TaskReport, check_task, check_tasks, find_leaks, format_report
from seqadapt.kinds import kind_of

LEAKED = [f"the same sentence number {i}" for i in range(7)]


def csv_labels(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return Counter(row["label"] for row in csv.DictReader(handle))


def edit_definition(task_dir, name, **changes):
    path = task_dir / f"{name}.yaml"
    definition = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**definition, **changes}))


def write_leaky_task(task_dir):
    """A task whose test file repeats 7 of its training texts verbatim (each once in train)."""
    rows = {"train": [(f"train text {i}", "ab"[i % 2]) for i in range(100)] + [(text, "a") for text in LEAKED],
            "test": [(f"test text {i}", "ab"[i % 2]) for i in range(30)] + [(text, "b") for text in LEAKED]}
    for split, lines in rows.items():
        with open(task_dir / f"leaky_{split}.csv", "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([("text", "label"), *lines])
    definition = {"name": "leaky", "labels": ["a", "b"],
                  "source": {"kind": "local_files", "format": "csv", "files": {"train": "leaky_train.csv", "test": "leaky_test.csv"}}}
    (task_dir / "leaky.yaml").write_text(yaml.safe_dump(definition))


def test_counts_per_raw_split_built_split_and_label(toy_task_dir):
    report = check_task("colors", toy_task_dir)
    assert report.ok and report.problems == () and report.definition == toy_task_dir / "colors.yaml"
    assert report.source_sizes == {"train": 160, "test": 80}
    # default SplitSizes: test keeps all 80 of the source's test file, val is a fifth of the 160 (32), train the rest
    assert report.split_sizes == {"train": 128, "val": 32, "test": 80}
    assert report.label_counts["test"] == dict(sorted(csv_labels(toy_task_dir / "colors_test.csv").items()))
    assert {split: sum(counts.values()) for split, counts in report.label_counts.items()} == report.split_sizes
    assert report.dropped == {} and report.leaks == () and report.source_leaks == ()
    spec = load_task_spec("colors", toy_task_dir)
    first = build_splits(spec, read_source(spec), SplitSizes()).train[0]
    assert len(report.examples) == 3 and report.examples[0] == f"[{spec.labels[first['label']]}] {first['text']}"


def test_rows_left_out_by_drop_labels_are_counted_per_split_and_value(toy_task_dir):
    edit_definition(toy_task_dir, "colors", labels=["blue", "red"], drop_labels=["green"])
    report = check_task("colors", toy_task_dir)
    greens = {split: csv_labels(toy_task_dir / f"colors_{split}.csv")["green"] for split in ("train", "test")}
    assert report.ok and all(greens.values())
    assert report.dropped == {split: {"drop_labels 'green'": n} for split, n in greens.items()}
    assert set(report.label_counts["train"]) == {"blue", "red"}
    assert report.split_sizes["test"] == 80 - greens["test"]


def test_leaked_texts_are_found_listed_and_warned_about(tmp_path):
    write_leaky_task(tmp_path)
    report = check_task("leaky", tmp_path, SplitSizes(val=20))
    (source,) = report.source_leaks
    assert (str(source), source.texts, source.examples) == ("source train/test", 7, tuple(LEAKED[:5]))
    assert {str(leak) for leak in report.leaks} <= {"train/test", "val/test"}
    assert sum(leak.texts for leak in report.leaks) == 7  # each leaked text sits in train or val, and in test
    (warning,) = report.problems
    assert report.ok and warning.level == "warning" and "data.drop_leaked=true" in warning.message
    assert report.dropped_leaked == {} and report.split_sizes == {"train": 87, "val": 20, "test": 37}


def test_drop_leaked_removes_them_and_counts_what_is_left(tmp_path):
    write_leaky_task(tmp_path)
    report = check_task("leaky", tmp_path, SplitSizes(val=20, drop_leaked=True))
    assert report.ok and report.problems == ()
    assert sum(report.dropped_leaked.values()) == 7
    assert sum(report.split_sizes.values()) == 87 + 20 + 37 - 7 and report.split_sizes["test"] == 37
    assert sum(leak.texts for leak in report.leaks) == 7  # what was found, before dropping
    assert "drop_leaked removed" in format_report(report)


def test_find_leaks_lists_at_most_five_distinct_texts_per_pair():
    spec = load_task_spec("trec")
    kind = kind_of(spec)
    def unlabelled(texts: list[str]) -> Dataset:
        return Dataset.from_list([kind.request(spec, {spec.text_field: text}, "test") for text in texts])

    rows = unlabelled([f"q{i}" for i in range(8)] * 2)  # every text twice in the same split
    leaks = find_leaks(kind, {"train": rows, "val": unlabelled(["other"]), "test": rows})
    (leak,) = leaks
    assert (str(leak), leak.texts, leak.examples) == ("train/test", 8, ("q0", "q1", "q2", "q3", "q4"))


def test_a_declared_label_missing_from_train_is_a_warning_not_an_error(toy_task_dir):
    edit_definition(toy_task_dir, "animals", labels=["cat", "dog", "parrot"])
    report = check_task("animals", toy_task_dir)
    (warning,) = report.problems
    assert report.ok and warning.level == "warning"
    assert "task 'animals'" in warning.message and "['parrot']" in warning.message
    assert report.label_counts["train"]["parrot"] == 0


def test_an_undeclared_label_is_an_error_and_shows_raw_rows(toy_task_dir):
    edit_definition(toy_task_dir, "animals", labels=["cat", "parrot"])
    report = check_task("animals", toy_task_dir)
    (error,) = report.problems
    assert not report.ok and error.level == "error" and "outside the declared set" in error.message
    assert report.source_sizes == {"train": 160, "test": 80} and report.split_sizes == {}
    assert len(report.examples) == 3 and "'sentence':" in report.examples[0]  # the raw columns, as read


def test_a_broken_definition_is_an_error_naming_the_file(toy_task_dir):
    (toy_task_dir / "weather.yaml").write_text("name: weather\nlabels: [sunny, rainy\n")
    reports = {report.name: report for report in check_tasks(None, toy_task_dir)}
    assert set(reports) == {"animals", "colors", "weather"}
    assert reports["colors"].ok and not reports["weather"].ok
    (error,) = reports["weather"].problems
    assert str(toy_task_dir / "weather.yaml") in error.message and "not valid YAML" in error.message
    assert reports["weather"].source_sizes == {} and "error" in format_report(reports["weather"])


def test_an_empty_data_file_is_an_error_naming_it(toy_task_dir):
    (toy_task_dir / "colors_test.csv").write_text("")
    (error,) = check_task("colors", toy_task_dir).problems
    assert error.level == "error" and "colors_test.csv is empty" in error.message


@pytest.mark.integration
def test_the_bundled_trec_task_reads_and_splits():
    report = check_task("trec")
    assert report.ok and report.source_sizes == {"all": 5452}
    assert report.split_sizes == {"train": 1000, "val": 200, "test": 400}
    assert list(report.label_counts["train"]) == ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    assert all(counts["ABBR"] > 0 for counts in report.label_counts.values())


def test_dropped_rows_name_ten_reasons_and_sum_the_rest():
    # before: one "N rows by drop_labels '...'" per dropped label, however many (a line of megabytes)
    report = TaskReport(name="t", definition=Path("t.yaml"), source_sizes={"all": 1000},
                        dropped={"all": {f"drop_labels 'l{i}'": i + 1 for i in range(30)}})
    (line,) = [line for line in format_report(report).splitlines() if line.startswith("  dropped")]
    named = ", ".join(f"{i + 1} rows by drop_labels 'l{i}'" for i in range(10))
    assert line == f"  dropped    all: {named} and 410 rows by 20 more reason(s)"  # 11 + 12 + ... + 30 = 410
