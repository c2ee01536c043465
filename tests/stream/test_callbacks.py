"""Stream callbacks: the hooks and their order, and users' own callbacks built from the ``callbacks`` config group."""

import pytest

from seqadapt.cli.train import run
from seqadapt.model import SeqAdaptModule
from seqadapt.stream import StreamCallback
from tests.cli.test_train import FAST, compose_train
from tests.stream.test_run import ORDER, stream

CALLS: list[tuple] = []


class Recorder(StreamCallback):
    """Notes every hook it sees, with what a user would read there."""

    def __init__(self, label: str = "recorder") -> None:
        self.label = label

    def on_stream_start(self, run):
        CALLS.append((self.label, "stream_start", run.record.completed_stages))

    def on_stage_start(self, run, stage):
        CALLS.append((self.label, "stage_start", stage.name))

    def on_stage_measured(self, run, stage, record):
        CALLS.append((self.label, "stage_measured", stage.name, run.record.completed_stages))

    def on_stage_end(self, run, stage, record):
        CALLS.append((self.label, "stage_end", stage.name, run.record.score_matrix[-1], record.guard.passed))

    def on_stream_end(self, run):
        CALLS.append((self.label, "stream_end", run.record.finished))

    def on_stream_finish(self, run, failed):
        CALLS.append((self.label, "stream_finish", failed))


def test_hooks_run_in_order_with_the_record_growing_between_them(toy_task_dir, tokenizer, tmp_path):
    CALLS.clear()
    record = stream(SeqAdaptModule, toy_task_dir, tokenizer, tmp_path, selectors=[], callbacks=[Recorder()]).run()
    hooks = [call[1] for call in CALLS]
    assert hooks == ["stream_start", *["stage_start", "stage_measured", "stage_end"] * 3, "stream_end", "stream_finish"]
    measured = [call for call in CALLS if call[1] == "stage_measured"]
    assert [call[3] for call in measured] == [0, 1, 2]  # measured before the stage joins the record
    ends = [call for call in CALLS if call[1] == "stage_end"]
    assert [call[3] for call in ends] == record.score_matrix and all(call[4] for call in ends)
    assert CALLS[-1] == ("recorder", "stream_finish", False)


def test_a_failing_stream_still_finishes_every_callback(toy_task_dir, tokenizer, tmp_path):
    CALLS.clear()

    def crash():
        raise MemoryError("simulated")

    with pytest.raises(MemoryError):
        stream(SeqAdaptModule, toy_task_dir, tokenizer, tmp_path, make_trainer=crash, callbacks=[Recorder()]).run()
    assert [call[1] for call in CALLS] == ["stream_start", "stage_start", "stream_finish"]
    assert CALLS[-1][2] is True


def test_users_add_callbacks_from_the_config_group(toy_task_dir, tmp_path):
    CALLS.clear()
    target = f"{__name__}.Recorder"
    cfg = compose_train([*FAST, f"task_dir={toy_task_dir}", f"tasks.order=[{ORDER[0]}]",
                         f"+callbacks.mine._target_={target}", "+callbacks.mine.label=mine"])
    run(cfg, tmp_path)
    assert ("mine", "stage_start", ORDER[0]) in CALLS and CALLS[-1] == ("mine", "stream_finish", False)


def test_a_callback_target_that_is_no_stream_callback_is_named(toy_task_dir, tmp_path):
    cfg = compose_train([*FAST, f"task_dir={toy_task_dir}", "+callbacks.bad._target_=collections.OrderedDict"])
    with pytest.raises(TypeError, match=r"callbacks.bad: collections.OrderedDict made a OrderedDict, not a .*StreamCallback"):
        run(cfg, tmp_path)
