"""``seqadapt-serve`` as a load balancer sees it: the real server on a free loopback port, real HTTP requests.

Answers equal what the run answers each request with alone (``LoadedStream.predict``, what seqadapt-predict
prints), with tasks mixed in one body and across concurrent requests; every bad request is a 4xx naming the
request and field and leaves the server serving; a model failure is a 500 and the next request is answered."""

from __future__ import annotations

import concurrent.futures
import json
import time
from pathlib import Path

import httpx
import pytest

import seqadapt.serve.batcher
from seqadapt.cli.train import run
from seqadapt.serving import load_stream
from tests.cli.test_train import FAST, compose_train
from tests.conftest import make_toy_task_dir
from tests.serve.server import running

ROUNDING = 1e-5  # batching changes BLAS sums' last bits (a row padded, or batched with others): see docs/how-to/serve.md


def same_answer(served: dict, alone: dict) -> bool:
    """The same task, label, tags or span, and every number within float rounding of answering it alone."""
    if isinstance(served, dict) and isinstance(alone, dict):
        return served.keys() == alone.keys() and all(same_answer(served[k], alone[k]) for k in served)
    if isinstance(served, list) and isinstance(alone, list):
        return len(served) == len(alone) and all(same_answer(a, b) for a, b in zip(served, alone))
    if isinstance(served, float) and isinstance(alone, float):
        return abs(served - alone) <= ROUNDING
    return served == alone


TEXTS = {"colors": "the big red house on the road", "animals": "a small puppy in the city",
         "weather": "storm and rain from the river"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("serve")
    task_dir = make_toy_task_dir(root)
    run(compose_train([*FAST, f"task_dir={task_dir}", "tasks.order=[colors,animals,weather]"]), root / "run")
    return root / "run"


@pytest.fixture(scope="module")
def url(run_dir) -> str:
    with running(run_dir, max_wait_ms=50, max_body_bytes=4000, max_items=8) as address:
        yield address


@pytest.fixture(scope="module")
def alone(run_dir):
    """What the run answers a request with on its own: the reference for every served answer."""
    stream = load_stream(run_dir)

    def answer(request: dict) -> dict:
        fields = {key: value for key, value in request.items() if key not in ("task", "select")}
        task = request.get("task")
        return stream.predict([fields], None if task is None else [task], selector=request.get("select", "mahalanobis"))[0].to_json()
    return answer


def test_a_list_mixing_tasks_and_a_selector_is_answered_as_each_request_alone(url, alone):
    body = [{"task": task, "text": text} for task, text in TEXTS.items()]
    body.append({"select": "mahalanobis", "text": TEXTS["animals"]})
    response = httpx.post(f"{url}/predict", json=body, timeout=60)
    assert response.status_code == 200
    answers = response.json()
    assert all(same_answer(got, alone(request)) for got, request in zip(answers, body, strict=True))
    assert [a["task"] for a in answers[:3]] == list(TEXTS) and answers[3]["selected_by"] == "mahalanobis"
    one = httpx.post(f"{url}/predict", json=body[0], timeout=60)
    assert one.json() == alone(body[0])  # one object in, one answer out: alone, so bit for bit


def test_concurrent_requests_of_different_tasks_share_batches_and_get_their_own_answers(url, alone):
    requests = [{"task": task, "text": f"{text} {i}"} for i in range(8) for task, text in TEXTS.items()]
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(lambda r: httpx.post(f"{url}/predict", json=r, timeout=60), requests))
    assert [r.status_code for r in responses] == [200] * len(requests)
    assert all(same_answer(r.json(), alone(request)) for r, request in zip(responses, requests, strict=True))
    metrics = httpx.get(f"{url}/metrics").text
    batched = [line for line in metrics.splitlines() if line.startswith('seqadapt_batch_rows_bucket{le="1"}')]
    count = next(line for line in metrics.splitlines() if line.startswith("seqadapt_batch_rows_count"))
    assert int(batched[0].split()[-1]) < int(count.split()[-1])  # some batch held more than one request
    assert 'seqadapt_rows_total{task="weather"}' in metrics and "seqadapt_request_latency_seconds_bucket" in metrics


@pytest.mark.parametrize("body, status, says", [
    (b'{"task": "colors", "text": ', 400, "not valid JSON"),
    (json.dumps({"task": "colors"}).encode(), 422, "sentence"),
    (json.dumps({"task": "nope", "text": "x"}).encode(), 422, "no task 'nope' in this run"),
    (json.dumps({"task": 3, "text": "x"}).encode(), 422, '"task" must be a task name'),
    (json.dumps({"text": "x"}).encode(), 422, 'names no "task" and no "select"'),
    (json.dumps({"task": "colors", "select": "mahalanobis", "text": "x"}).encode(), 422, "gives both"),
    (json.dumps({"select": "guess", "text": "x"}).encode(), 422, "choose one of"),
    (json.dumps([{"task": "colors", "text": "x"}] * 9).encode(), 413, "at most 8 per body"),
    (json.dumps({"task": "colors", "text": "x" * 5000}).encode(), 413, "at most 4000"),
    (b"[]", 400, "empty list"),
])
def test_a_bad_request_is_a_4xx_naming_what_is_wrong_and_the_server_goes_on(url, body, status, says):
    response = httpx.post(f"{url}/predict", content=body, headers={"content-type": "application/json"}, timeout=60)
    assert response.status_code == status and says in response.json()["error"] + json.dumps(response.json())
    assert httpx.get(f"{url}/health").json()["status"] == "ready"


def test_an_unanswerable_request_in_a_list_names_its_index_and_the_fields_its_task_reads(url):
    body = [{"task": "colors", "text": "red"}, {"task": "animals", "txt": "cat"}]
    error = httpx.post(f"{url}/predict", json=body, timeout=60).json()
    assert error["errors"][0]["index"] == 1 and error["errors"][0]["task"] == "animals"
    assert error["errors"][0]["expected_fields"] == {"animals": ["sentence"]}


def test_tasks_lists_each_task_with_its_fields_and_what_it_scored_when_learned(url, run_dir):
    listed = httpx.get(f"{url}/tasks").json()
    record = json.loads((run_dir / "results.json").read_text())
    assert [t["task"] for t in listed["tasks"]] == ["colors", "animals", "weather"]
    first = listed["tasks"][0]
    assert first["kind"] == "classification" and first["fields"] == ["sentence"] and first["version"] == 1
    assert first["score"] == record["score_matrix"][0][0] and first["metric"] == "accuracy"


def test_an_overloaded_server_sheds_load_with_a_503_and_retry_after(run_dir, monkeypatch):
    original = seqadapt.serve.batcher.answer

    def slow(stream, items):
        time.sleep(1.0)
        return original(stream, items)
    monkeypatch.setattr(seqadapt.serve.batcher, "answer", slow)
    with running(run_dir, max_queue=1, max_wait_ms=0) as address:
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            responses = list(pool.map(lambda _: httpx.post(f"{address}/predict", json={"task": "colors", "text": "red"},
                                                          timeout=60), range(3)))
        metrics = httpx.get(f"{address}/metrics").text
    shed = [r for r in responses if r.status_code == 503]
    assert shed and {r.status_code for r in responses} == {200, 503}
    assert shed[0].headers["retry-after"] == "1" and "overloaded" in shed[0].json()["error"]
    assert 'seqadapt_errors_total{kind="overloaded"}' in metrics


def test_a_model_failure_is_a_500_and_the_next_request_is_answered(url, monkeypatch):
    def broken(stream, items):
        raise RuntimeError("out of memory")
    monkeypatch.setattr(seqadapt.serve.batcher, "answer", broken)
    failed = httpx.post(f"{url}/predict", json={"task": "colors", "text": "red"}, timeout=60)
    assert failed.status_code == 500 and "out of memory" in failed.json()["error"]
    monkeypatch.undo()
    assert httpx.post(f"{url}/predict", json={"task": "colors", "text": "red"}, timeout=60).status_code == 200
    assert 'seqadapt_errors_total{kind="model"} 1' in httpx.get(f"{url}/metrics").text
