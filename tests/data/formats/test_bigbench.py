"""BIG-bench task.json files that are not what they should be: named with the file and the example, never an
AttributeError or RecursionError traceback (``seqadapt-tasks check`` prints these, it does not crash)."""

import pytest

from seqadapt.data.sources import read_table
from seqadapt.errors import DataFileError


@pytest.mark.parametrize(
    ("text", "options", "refusal"),
    [("[]", {}, r"task.json has no 'examples' list: it is not a BIG-bench task.json"),
     ('{"examples": ["just a text"]}', {}, r"task.json: examples\[0\] is 'just a text'; an example is an object"),
     ('{"examples": [{"input": 3}]}', {}, r"task.json: examples\[0\] is \"\{'input': 3\}\"; an example is an object"),
     ('{"examples": [{"input": "a", "target_scores": [1]}]}', {},
      r"examples\[0\].target_scores is '\[1\]'; it must map each answer to its score"),
     ('{"examples": [{"input": "a", "target": "b"}]}', {"input_pattern": "(?P<x>"},
      r"cannot be read as bigbench: source.input_pattern '\(\?P<x>' is not a regular expression"),
     ("[" * 100_000 + "]" * 100_000, {}, r"task.json cannot be read as bigbench: it is nested too deeply")],
)
def test_malformed_task_json_is_named_not_a_traceback(tmp_path, text, options, refusal):
    # before: AttributeError ('list' object has no attribute 'get'), TypeError, re.error, RecursionError
    path = tmp_path / "task.json"
    path.write_text(text)
    with pytest.raises(DataFileError, match=refusal):
        read_table(path, "bigbench", options)


def test_a_named_group_that_matches_nothing_is_an_empty_field(tmp_path):
    # before: AttributeError: 'NoneType' object has no attribute 'strip'
    path = tmp_path / "task.json"
    path.write_text('{"examples": [{"input": "Q: why", "target": "b"}]}')
    rows = read_table(path, "bigbench", {"input_pattern": r"Q: (?P<question>.*?)(?: C: (?P<context>.*))?"})
    assert rows.to_list() == [{"question": "why", "context": "", "target": "b"}]
