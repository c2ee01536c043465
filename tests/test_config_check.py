"""Every config value is checked before any work, named with its key and what is allowed."""

import pytest

from seqadapt.config_check import ConfigError, check_config
from tests.cli.test_train import FAST, compose_train


def test_the_default_and_fast_configs_pass():
    check_config(compose_train([]))
    check_config(compose_train(FAST))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.train_size=-5", r"data.train_size=-5: expected a whole number >= 1 or null"),
        ("data.train_size=abc", r"data.train_size='abc': expected a whole number >= 1"),
        ("data.max_length=0", r"data.max_length=0: expected a whole number >= 8"),
        ("seed=abc", r"seed='abc': expected a whole number >= 0"),
        ("guard.mode=loose", r"guard.mode='loose': expected one of strict, report"),
        ("head_dropout=1.5", r"head_dropout=1.5: expected a number in \[0.0, 1.0\)"),
        ("tasks.order=[]", r"tasks.order=\[\]: expected a list of task names"),
    ],
)
def test_bad_values_are_named_with_what_is_allowed(override, message):
    with pytest.raises(ConfigError, match=message):
        check_config(compose_train([override]))


def test_every_problem_is_listed_at_once():
    with pytest.raises(ConfigError, match=r"(?s)data.batch_size=0: .*optim.learning_rate=-1: "):
        check_config(compose_train(["data.batch_size=0", "optim.learning_rate=-1"]))


def test_imports_name_a_task_of_the_stream_an_existing_folder_and_a_strategy_with_per_task_adapters(tmp_path):
    check_config(compose_train([*FAST, "tasks.order=[trec]", f"+tasks.imports.trec={tmp_path}"]))
    with pytest.raises(ConfigError, match=r"(?s)tasks.imports.sst: 'sst' is not in tasks.order \['trec'\].*"
                                          r"tasks.imports.sst='/no/such/folder': no such folder"):
        check_config(compose_train([*FAST, "tasks.order=[trec]", "+tasks.imports.sst=/no/such/folder"]))
    with pytest.raises(ConfigError, match=r"strategy=finetune does not give each task its own adapter"):
        check_config(compose_train([*FAST, "tasks.order=[trec]", "strategy=finetune", f"+tasks.imports.trec={tmp_path}"]))


def test_adapter_settings_of_another_method_are_refused_before_any_work():
    cfg = compose_train([*FAST, "adapter=lora", "+adapter.bottleneck=8"])
    with pytest.raises(ConfigError, match=r"adapter: adapter.bottleneck is not a setting of adapter method 'lora'"):
        check_config(cfg)
    check_config(compose_train([*FAST, "adapter=ia3"]))


def test_a_max_length_beyond_the_backbones_positions_is_refused_before_any_stage(toy_task_dir, tmp_path):
    from seqadapt.cli.train import run

    cfg = compose_train([*FAST, f"task_dir={toy_task_dir}", "tasks.order=[colors,animals]", "data.max_length=128",
                         "+backbone.model_config.max_position_embeddings=64"])
    with pytest.raises(ConfigError, match=(r"data.max_length=128 needs 128 positions, but backbone 'tiny-random-bert' "
                                           r"\(bert\) has 64; set data.max_length=64 or lower")):
        run(cfg, tmp_path / "run")
    assert not {"results.json", "run_config.yaml", "tasks"} & {p.name for p in (tmp_path / "run").iterdir()}
    run(compose_train([*FAST, f"task_dir={toy_task_dir}", "tasks.order=[colors]", "data.max_length=64",
                       "+backbone.model_config.max_position_embeddings=64"]), tmp_path / "fits")  # all 64 may be used


def test_a_decoders_generated_answer_counts_against_its_positions(family_dirs):
    from seqadapt.backbone import BackboneConfig, load_backbone
    from seqadapt.config_check import check_max_length
    from seqadapt.data import TaskSpec

    gpt2 = load_backbone(BackboneConfig(name="tiny-gpt2", path=str(family_dirs["gpt2"])))  # n_positions 64
    text = TaskSpec(name="past", source={}, type="text_to_text", prompt="{input}:", max_target_length=4)
    other = TaskSpec(name="colors", source={}, labels=("red", "blue"))
    check_max_length(60, gpt2, [other, text])  # 60 prompt tokens + 4 generated = 64
    with pytest.raises(ConfigError, match=(
            r"data.max_length=61 plus max_target_length 4 of task 'past' \(generated after the prompt, in the same "
            r"sequence\) needs 65 positions, but backbone 'tiny-gpt2' \(gpt2\) has 64; set data.max_length=60 or "
            r"lower, or lower max_target_length in tasks/past.yaml")):
        check_max_length(61, gpt2, [other, text])
    t5 = load_backbone(BackboneConfig(name="tiny-t5", path=str(family_dirs["t5"])))
    check_max_length(100_000, t5, [text])  # relative positions: no limit
