"""The official SQuAD JSON read into one row per question, and malformed files named precisely."""

import json

import pytest

from seqadapt.data.formats.squad import read_squad
from seqadapt.errors import DataFileError

OFFICIAL = {
    "version": "v2.0",
    "data": [
        {"title": "Super_Bowl_50", "paragraphs": [{
            "context": "Denver Broncos defeated the Carolina Panthers.",
            "qas": [
                {"id": "q1", "question": "Who won?", "answers": [
                    {"text": "Denver Broncos", "answer_start": 0}, {"text": "Broncos", "answer_start": 7}]},
                {"id": "q2", "question": "Who lost the 1999 final?", "answers": [],
                 "plausible_answers": [{"text": "Carolina Panthers", "answer_start": 28}], "is_impossible": True},
            ],
        }]},
        {"title": "Rivers", "paragraphs": [
            {"context": "The Nile flows north.", "qas": [
                {"id": 7, "question": "Which way?", "answers": [{"text": "north", "answer_start": 15}]}]},
            {"context": "Empty paragraph.", "qas": []},
        ]},
    ],
}


def read(tmp_path, document):
    path = tmp_path / "dev.json"
    text = json.dumps(document)
    path.write_text(text)
    return read_squad(path, text, {})


def test_each_question_becomes_a_row_in_the_hugging_face_squad_layout(tmp_path):
    rows = read(tmp_path, OFFICIAL)
    assert rows.column_names == ["id", "title", "context", "question", "answers"] and len(rows) == 3
    assert rows[0] == {
        "id": "q1", "title": "Super_Bowl_50", "context": "Denver Broncos defeated the Carolina Panthers.",
        "question": "Who won?", "answers": {"text": ["Denver Broncos", "Broncos"], "answer_start": [0, 7]},
    }
    assert rows[1]["answers"] == {"text": [], "answer_start": []}  # an impossible question's plausible answers are not answers
    assert rows[2]["id"] == "7" and rows[2]["context"] == "The Nile flows north." and rows[2]["title"] == "Rivers"


def test_an_impossible_question_needs_no_answers_and_a_missing_id_is_its_place(tmp_path):
    qa = {"question": "Who?", "is_impossible": True}
    rows = read(tmp_path, {"data": [{"paragraphs": [{"context": "c", "qas": [qa]}]}]})
    assert rows[0]["id"] == "data[0].paragraphs[0].qas[0]" and rows[0]["title"] == ""
    assert rows[0]["answers"] == {"text": [], "answer_start": []}


def test_a_malformed_file_names_the_file_and_the_missing_part(tmp_path):
    broken = json.loads(json.dumps(OFFICIAL))
    del broken["data"][1]["paragraphs"][0]["qas"][0]["question"]
    with pytest.raises(DataFileError, match=r"dev.json: data\[1\]\.paragraphs\[0\]\.qas\[0\] has no 'question'"):
        read(tmp_path, broken)
    broken = json.loads(json.dumps(OFFICIAL))
    broken["data"][0]["paragraphs"][0]["qas"][0]["answers"][1]["answer_start"] = "7"
    with pytest.raises(DataFileError, match=r"data\[0\]\.paragraphs\[0\]\.qas\[0\]\.answers\[1\]\.answer_start is '7'; "
                                            r"it must be an integer"):
        read(tmp_path, broken)
    broken = json.loads(json.dumps(OFFICIAL))
    del broken["data"][0]["paragraphs"][0]["qas"][0]["answers"]
    with pytest.raises(DataFileError, match=r"qas\[0\] has no 'answers'"):
        read(tmp_path, broken)
    with pytest.raises(DataFileError, match=r"the file has no 'data'"):
        read(tmp_path, {"version": "v2.0"})
    with pytest.raises(DataFileError, match=r"holds a JSON list; the official SQuAD layout is an object"):
        read(tmp_path, [])
    with pytest.raises(DataFileError, match=r"data\[0\]\.paragraphs is 'x'; it must be a list"):
        read(tmp_path, {"data": [{"paragraphs": "x"}]})
    with pytest.raises(DataFileError, match=r"data\[0\] is str 'oops', not an object"):
        read(tmp_path, {"data": ["oops"]})
    path = tmp_path / "bad.json"
    with pytest.raises(DataFileError, match=r"bad.json is not JSON \(Expecting value at line 1, column 1\)"):
        read_squad(path, "nope", {})
