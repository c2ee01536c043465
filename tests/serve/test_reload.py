"""The served set follows the run folder without a restart: a task the run gains is served once its stage's
artefact is written, a retired task is refused with why, and requests in flight meanwhile are all answered; a
reload that fails keeps the old set serving and says why."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from seqadapt.cli.train import run
from seqadapt.exchange.export import export_task
from tests.cli.test_train import FAST, compose_train
from tests.conftest import make_toy_task_dir
from tests.serve.server import running


def wait_for(condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the server did not pick the change up")
        time.sleep(0.1)


@pytest.fixture
def shop(tmp_path) -> tuple[Path, Path]:
    task_dir = make_toy_task_dir(tmp_path)
    definition = yaml.safe_load((task_dir / "colors.yaml").read_text())
    (task_dir / "shades.yaml").write_text(yaml.safe_dump({**definition, "name": "shades"}))
    run(compose_train([*FAST, f"task_dir={task_dir}", "tasks.order=[colors,animals]"]), tmp_path / "run")
    return tmp_path / "run", task_dir


def test_a_task_the_run_gains_is_served_and_every_request_in_flight_is_answered(shop, tmp_path):
    run_dir, task_dir = shop
    export_task(run_dir, "colors", "adapters", tmp_path / "colors_hub", head=False)
    statuses: list[int] = []
    stop = threading.Event()
    with running(run_dir, reload_interval_s=0.2) as url:
        def traffic() -> None:
            with httpx.Client(timeout=60) as client:
                while not stop.is_set():
                    statuses.append(client.post(f"{url}/predict", json={"task": "animals", "text": "a cat"}).status_code)
        sender = threading.Thread(target=traffic)
        sender.start()
        # as users change a served run: other processes (in-process, a random backbone built while the server's
        # thread answers would draw from the same global RNG)
        grow = [*FAST, f"task_dir={task_dir}", "tasks.order=[colors,animals,shades]", f"resume={run_dir}",
                f"+tasks.imports.shades={tmp_path / 'colors_hub'}", f"hydra.run.dir={tmp_path / 'log'}"]
        subprocess.run([sys.executable, "-m", "seqadapt.cli.train", *grow], check=True, capture_output=True, timeout=600)
        wait_for(lambda: "shades" in httpx.get(f"{url}/health").json()["tasks"])
        answer = httpx.post(f"{url}/predict", json={"task": "shades", "text": "a red car"}, timeout=60).json()
        same = httpx.post(f"{url}/predict", json={"task": "colors", "text": "a red car"}, timeout=60).json()
        subprocess.run([sys.executable, "-m", "seqadapt.cli.task", "retire", str(run_dir), "--task", "animals"],
                       check=True, capture_output=True, timeout=600)
        wait_for(lambda: "animals" not in httpx.get(f"{url}/health").json()["tasks"])
        stop.set()
        sender.join(60)
        refused = httpx.post(f"{url}/predict", json={"task": "animals", "text": "a cat"}, timeout=60)
        health = httpx.get(f"{url}/health").json()
    assert answer["task"] == "shades" and answer["label"] == same["label"] and answer["probabilities"] == same["probabilities"]
    assert statuses.count(200) >= 1 and set(statuses) <= {200, 422}
    assert statuses == sorted(statuses)  # answered until retired, then refused with why: no failure in between
    assert refused.status_code == 422 and "retired" in refused.json()["error"]
    assert health["version"] == 3 and health["reload_error"] is None


def test_a_reload_that_fails_keeps_serving_the_old_set_and_says_why(shop):
    run_dir, _ = shop
    config = run_dir / "run_config.yaml"
    saved = config.read_text()
    with running(run_dir, reload_interval_s=0.2) as url:
        config.write_text(saved.replace("max_length: 16", "max_length: 32"))  # no longer the artefacts' setting
        wait_for(lambda: httpx.get(f"{url}/health").json()["reload_error"] is not None)
        health = httpx.get(f"{url}/health").json()
        answered = httpx.post(f"{url}/predict", json={"task": "colors", "text": "red"}, timeout=60)
        config.write_text(saved)
        wait_for(lambda: httpx.get(f"{url}/health").json()["reload_error"] is None)
    assert health["status"] == "ready" and health["version"] == 1 and "max_length" in health["reload_error"]
    assert answered.status_code == 200


def test_a_folder_that_cannot_be_served_is_said_by_health_and_predict(tmp_path):
    (tmp_path / "not_a_run").mkdir()
    with running(tmp_path / "not_a_run", ready=False) as url:
        health = httpx.get(f"{url}/health")
        refused = httpx.post(f"{url}/predict", json={"task": "colors", "text": "red"})
    assert health.status_code == 503 and health.json()["status"] == "failed" and "run_config.yaml" in health.json()["error"]
    assert refused.status_code == 503 and "not ready" in refused.json()["error"]
