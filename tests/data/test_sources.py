from collections import Counter

import pytest

from seqadapt.data import DataFileError, TaskDefinitionError, TaskSpec, load_task_spec, read_source
from seqadapt.data.sources import read_table


@pytest.mark.parametrize(
    ("task", "splits", "n_labels"),
    [("trec", {"all": 5452}, 6), ("sms_spam", {"all": 4837}, 2), ("reuters_r8", {"train": 5485, "test": 2189}, 8)],
)
def test_bundled_sources_read_the_packaged_files(task, splits, n_labels):
    spec = load_task_spec(task)
    frames = read_source(spec)
    assert {split: len(frame) for split, frame in frames.items()} == splits
    labels = Counter(frames[next(iter(splits))][spec.label_field])
    assert len(labels) == n_labels


def test_rotten_tomatoes_keeps_plot_rows_for_drop_labels():
    frames = read_source(load_task_spec("rotten_tomatoes"))
    assert Counter(frames["all"]["category"]) == {"fresh": 7403, "rotten": 5405, "plot": 1097}


def test_non_utf8_file_names_the_byte_and_the_fix(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"text,label\ncaf\xe9 au lait,a\n")
    with pytest.raises(DataFileError, match=r"bad.csv is not valid UTF-8: byte 0xe9 at offset 14.*iconv"):
        read_table(path, "csv", {})


def test_malformed_trec_line_is_named(tmp_path):
    path = tmp_path / "q.txt"
    path.write_text("NUM:date When was it ?\nno label here\n")
    with pytest.raises(DataFileError, match=r"q.txt: line 2 is not 'LABEL:fine text': 'no label here'"):
        read_table(path, "trec", {})


def test_unknown_format_and_kind_are_refused(tmp_path):
    (tmp_path / "f.csv").write_text("a\n")
    with pytest.raises(TaskDefinitionError, match="unknown file format 'xls'"):
        read_table(tmp_path / "f.csv", "xls", {})


def test_missing_local_file_is_named(toy_task_dir):
    (toy_task_dir / "colors_test.csv").unlink()
    with pytest.raises(DataFileError, match=r"task 'colors': data file\(s\) not found: \['.*/colors_test.csv'\]"):
        read_source(load_task_spec("colors", toy_task_dir))


@pytest.mark.parametrize(("file_format", "content"), [("csv", ""), ("tsv", ""), ("csv", "\n  \n"), ("jsonl", "")])
def test_an_empty_file_is_named_not_a_bare_pandas_error(tmp_path, file_format, content):
    # before: pandas.errors.EmptyDataError "No columns to parse from file", without the file's name
    path = tmp_path / f"train.{file_format}"
    path.write_text(content)
    with pytest.raises(DataFileError, match=rf"{path} is empty: it needs a header row and at least one example"):
        read_table(path, file_format, {})


def test_a_malformed_csv_names_the_file_and_the_line(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("text,label\nfine,a\ntoo,many,fields\n")
    with pytest.raises(DataFileError, match=r"rows.csv cannot be read as csv: .*line 3"):
        read_table(path, "csv", {})


@pytest.mark.parametrize(
    ("source", "match"),
    [
        ({"kind": "local_files", "format": "csv"}, r"source \(kind local_files\) has no 'files'; add `files: \{train:"),
        ({"kind": "local_files", "files": {"all": "x.csv"}}, r"source \(kind local_files\) has no 'format'; add `format: csv"),
        ({"kind": "package_file", "format": "csv", "files": {"all": "x.csv"}}, r"source \(kind package_file\) has no 'package'; add `package: "),
        ({"kind": "local_files", "format": "csv", "files": "x.csv"}, r"source.files is 'x.csv'; write `files: \{train"),
        ({"kind": "local_files", "format": "xlsx", "files": {"all": "x.csv"}}, r"source.format 'xlsx' is unknown"),
        ({"kind": "hf_dataset"}, r"source \(kind hf_dataset\) has no 'path'"),
        ({"kind": "ftp"}, r"source.kind is 'ftp'; choose package_file, local_files, package_sdist, hf_dataset"),
    ],
)
def test_a_source_missing_what_its_reader_needs_is_named(source, match):
    # before: KeyError('files') / KeyError('format') from read_source
    spec = TaskSpec(name="t", labels=("a", "b"), source=source)
    with pytest.raises(TaskDefinitionError, match=r"task 't': " + match):
        read_source(spec)


def test_a_huge_value_in_a_source_is_shown_clipped():
    # before: the message repeated all 100,000 entries of the list
    source = {"kind": "local_files", "format": "csv", "files": ["x"] * 100_000}
    spec = TaskSpec(name="t", labels=("a", "b"), source=source)
    with pytest.raises(TaskDefinitionError, match=r"^task 't': source.files is \['x', 'x', .*…; write `files: ") as caught:
        read_source(spec)
    assert len(str(caught.value)) < 300
