"""Reading JSON from received files: every hostile shape is an UntrustedJsonError naming the file, never a traceback."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Literal, NotRequired, TypedDict

import pytest

from seqadapt.untrusted_json import (
    MAX_DEPTH,
    UntrustedJsonError,
    check_type,
    construct,
    parse_json_object,
    read_json_object,
)

DEEP = "[" * 100_000 + "]" * 100_000  # json.loads raises RecursionError on it
NOT_AN_OBJECT = pytest.mark.parametrize(  # what every reader of a received JSON file must refuse, with the problem
    ("content", "problem"),
    [(DEEP, "nested more than 64 levels deep"), ("[1, 2]", "a JSON array at top level, not an object"),
     ('"a string"', "a JSON string at top level, not an object")],
    ids=["nested", "array", "string"],
)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (DEEP, "nested more than 64 levels deep"),
        ('{"a": ' + DEEP + "}", "nested more than 64 levels deep"),
        ('{"a": ' + "[" * 64 + "]" * 64 + "}", "nested more than 64 levels deep"),  # parses, but 65 deep
        ("[1, 2]", "a JSON array at top level, not an object"),
        ('"a string"', "a JSON string at top level, not an object"),
        ("null", "a JSON null at top level, not an object"),
        ('{"n": ' + "9" * 5000 + "}", "not valid JSON (Exceeds the limit (4300 digits)"),
        ('{"a": ', "not valid JSON (Expecting value: line 1 column 7 (char 6))"),
        ("", "not valid JSON (Expecting value: line 1 column 1 (char 0))"),
    ],
    ids=["deep array", "deep in an object", "65 levels", "array", "string", "null", "huge number", "cut", "empty"],
)
def test_hostile_json_is_refused_naming_where(text, problem):
    with pytest.raises(UntrustedJsonError, match=r"^input line 3 is ") as caught:
        parse_json_object(text, "input line 3")
    assert caught.value.problem.startswith(problem)


def test_nesting_up_to_the_limit_is_read():
    nested = '{"a": ' + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "}"  # 64 levels: the object and 63 arrays
    value = parse_json_object(nested, "x")["a"]
    for _ in range(MAX_DEPTH - 2):
        value = value[0]
    assert value == []


def test_bytes_that_are_not_utf8_are_named(tmp_path):
    path = tmp_path / "results.json"
    path.write_bytes(b'{"task": "caf\xe9"}')
    with pytest.raises(UntrustedJsonError, match=r"results.json is not UTF-8 \(invalid continuation byte at byte offset 13\)"):
        read_json_object(path, 1000)


def test_a_file_over_the_cap_is_refused_without_being_read(tmp_path):
    path = tmp_path / "manifest.json"
    with open(path, "wb") as handle:
        handle.truncate(2**30)  # a sparse file: 1 GiB claimed, nothing on disk
    started = time.perf_counter()
    with pytest.raises(UntrustedJsonError, match=rf"manifest.json is larger than the {2**20} bytes allowed "
                                                 rf"\({2**30} bytes\)"):
        read_json_object(path, 2**20)
    assert time.perf_counter() - started < 1.0  # reading 1 GiB of zeros alone takes longer


def test_a_fifo_is_refused_instead_of_blocking(tmp_path):
    path = tmp_path / "results.json"
    os.mkfifo(path)  # no writer: opening it for reading would wait forever
    with pytest.raises(UntrustedJsonError, match=r"results.json is not a regular file"):
        read_json_object(path, 1000)


def test_a_file_at_the_cap_is_read(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('{"a": 1}')
    assert read_json_object(path, 8) == {"a": 1}
    with pytest.raises(UntrustedJsonError, match=r"larger than the 7 bytes allowed \(8 bytes\)"):
        read_json_object(path, 7)


@dataclass(frozen=True)
class Evaluation:
    task: str
    score: float
    examples: int
    kind: Literal["full", "tensors"] = "full"
    note: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)


class Entry(TypedDict):
    file: str
    sizes: list[int]
    written_by: NotRequired[str]


GOOD = {"task": "a", "score": 1, "examples": 3}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({**GOOD, "score": "high"}, 'f.json: score is a JSON string ("high"), not a number'),
        ({**GOOD, "examples": 2.5}, "f.json: examples is a JSON number (2.5), not an integer"),
        ({**GOOD, "examples": True}, "f.json: examples is a JSON boolean (true), not an integer"),
        ({**GOOD, "kind": "half"}, "f.json: kind is a JSON string (\"half\"), not one of ['full', 'tensors']"),
        ({**GOOD, "note": 5}, "f.json: note is a JSON number (5), not a string or null"),
        ({**GOOD, "metrics": {"f1": [1]}}, "f.json: metrics.f1 is a JSON array, not a number"),
        ({"task": "a", "score": 1.0}, "f.json is an object without 'examples'"),
    ],
)
def test_a_wrong_typed_or_missing_field_is_named_by_its_key(data, message):
    with pytest.raises(UntrustedJsonError) as caught:
        construct(Evaluation, data, "f.json")
    assert str(caught.value) == message


def test_fields_of_the_right_types_construct_and_unknown_keys_are_ignored():
    assert construct(Evaluation, {**GOOD, "note": None, "added_later": 1}, "f.json") == Evaluation("a", 1, 3)


def test_typed_dict_keys_nested_and_optional():
    check_type({"file": "w.safetensors", "sizes": [1, 2]}, Entry, "m.json", "weights")  # written_by may be absent
    with pytest.raises(UntrustedJsonError, match=r"^m.json: weights.sizes\[1\] is a JSON string \(\"2\"\), not an integer$"):
        check_type({"file": "w", "sizes": [1, "2"]}, Entry, "m.json", "weights")
    with pytest.raises(UntrustedJsonError, match=r"^m.json: weights.written_by is a JSON number \(7\), not a string$"):
        check_type({"file": "w", "sizes": [], "written_by": 7}, Entry, "m.json", "weights")
    with pytest.raises(UntrustedJsonError, match=r"^m.json: weights is a JSON array, not an object$"):
        check_type(["w"], Entry, "m.json", "weights")
