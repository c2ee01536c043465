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
