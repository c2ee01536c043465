"""The override rules of a resume: which command-line settings count as given, which a run refuses, applies or takes
from the invocation, and what a growth keeps of its earlier tasks. Composed configs only, nothing trains."""

import logging
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from seqadapt.overrides import OverrideError, continued_config, kind_of, run_settings, same, stage_settings
from tests.cli.test_train import FAST, compose_train

RUN = Path("/runs/r")
SAVED = [*FAST, "task_dir=/tasks", "tasks.order=[colors,animals]"]


def saved(*extra: str):
    """A run_config.yaml as a run composed with ``SAVED`` + ``extra`` writes it, read back as plain data."""
    return OmegaConf.create(OmegaConf.to_container(compose_train([*SAVED, *extra]), resolve=True))


def resume(saved_config, *overrides: str, listed: bool = True):
    """What ``seqadapt resume=<run> <overrides>`` continues with (``listed``: Hydra hands the override list over)."""
    given = [f"resume={RUN}", *overrides]
    return continued_config(saved_config, compose_train(given), compose_train([]), given if listed else [], RUN)


def test_the_table_takes_the_longest_prefix_and_an_earlier_task_s_sizes_are_the_model_s():
    assert [kind_of(key) for key in ("trainer.max_epochs", "trainer.gradient_clip_val", "trainer.precision",
                                     "adapter.bottleneck", "optim.learning_rate", "logger.mode", "tasks.extra")] == [
        "stage", "stage", "model", "model", "stage", "invocation", None]
    assert kind_of("data.task_sizes.colors.train_size", ["colors"]) == "model"
    assert kind_of("data.task_sizes.weather.train_size", ["colors"]) == "stage"
    assert kind_of("tasks.imports.colors", ["colors"]) == "model"  # a learned task cannot be imported again
    assert kind_of("tasks.imports.weather", ["colors"]) == "stage"
    assert not same(1, 1.0) and not same(1, True) and same([1, "a"], [1, "a"])


def test_a_plain_resume_continues_with_the_saved_settings_also_where_a_default_changed_since(caplog):
    older = saved()
    older.data.batch_size = 32  # saved when the default was 32
    with caplog.at_level(logging.INFO, logger="seqadapt"):
        continued = resume(older)
    assert run_settings(OmegaConf.to_container(continued)) == run_settings(OmegaConf.to_container(older))
    assert continued.resume == str(RUN) and continued.logger.backend == "wandb"  # the invocation's own
    assert "applied" not in caplog.text and "growing" not in caplog.text


def test_a_key_named_on_the_command_line_counts_even_where_it_equals_the_default():
    with pytest.raises(OverrideError, match=r"seed: the run has 1, this command line gives 0 \(shapes the model"):
        resume(saved("seed=1"), *FAST, "seed=0")
    assert resume(saved("seed=1"), "seed=0", listed=False).seed == 1  # without the list, only what differs counts


def test_a_group_choice_is_compared_by_every_key_it_sets():
    refusal = (r"(?s)guard.mode: the run has 'strict', this command line gives 'report'"
               r".*strategy.name: the run has 'adapter', this command line gives 'finetune'.*new run in another folder")
    with pytest.raises(OverrideError, match=refusal):
        resume(saved(), "strategy=finetune")


def test_an_unknown_key_is_refused_with_how_to_proceed():
    with pytest.raises(OverrideError, match=r"(?s)tasks.extra: the run has \(not set\), this command line gives 1 "
                                            r"\(seqadapt does not know what this key does.*Drop these"):
        resume(saved(), "+tasks.extra=1")


def test_stage_and_report_settings_are_applied_and_logged(caplog):
    with caplog.at_level(logging.INFO, logger="seqadapt"):
        continued = resume(saved(), "trainer.max_epochs=3", "optim.learning_rate=0.01",
                           "reference_accuracy={colors: 0.9, animals: 0.8}")
    assert continued.trainer.max_epochs == 3 and continued.optim.learning_rate == 0.01
    assert OmegaConf.to_container(continued.reference_accuracy) == {"colors": 0.9, "animals": 0.8}  # was null
    assert "trainer.max_epochs: the run has 1, this command line gives 3; applied to the stages" in caplog.text


def test_new_split_sizes_go_to_the_added_tasks_and_each_earlier_task_keeps_its_own():
    continued = resume(saved(), "tasks.order=[colors,animals,weather]", "data.train_size=32", "data.test_size=null")
    config = OmegaConf.to_container(continued, resolve=True)
    pinned = {"train_size": 48, "val_size": 8, "test_size": 24}  # SAVED's sizes
    assert config["data"]["task_sizes"] == {"colors": pinned, "animals": pinned}
    assert [stage_settings(config, [t])["data.train_size"] for t in ("colors", "weather")] == [48, 32]
    assert stage_settings(config, ["animals", "weather"])["data.test_size"] == {"animals": 24, "weather": None}
    assert stage_settings(config, ["weather"])["trainer.max_epochs"] == 1
    with pytest.raises(OverrideError, match=r"data.task_sizes.colors.train_size: the run has 48, this command line "
                                            r"gives 10 \(shapes the model"):
        resume(OmegaConf.create(config), "+data.task_sizes.colors.train_size=10")


def test_a_growth_may_import_its_new_task_and_never_re_import_an_earlier_one(tmp_path):
    continued = resume(saved(), "tasks.order=[colors,animals,weather]", f"+tasks.imports.weather={tmp_path}")
    assert OmegaConf.to_container(continued.tasks.imports) == {"weather": str(tmp_path)}
    assert "tasks.imports.weather" not in stage_settings(OmegaConf.to_container(continued), ["weather"])
    with pytest.raises(OverrideError, match=r"tasks.imports.colors: the run has \(not set\), this command line gives"):
        resume(saved(), f"+tasks.imports.colors={tmp_path}")
