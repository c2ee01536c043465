"""The HTTP application of ``seqadapt-serve``: FastAPI routes over a :class:`~seqadapt.serve.served.ServedRun`.

``POST /predict`` answers one request object or a list (as ``seqadapt-predict`` lines: the task's input fields
plus ``"task"``, or ``"select"``); ``GET /tasks`` lists what is served; ``GET /health`` is ready (200) once every
artefact verified, 503 before; ``GET /metrics`` is Prometheus text. Every refusal is a JSON ``{"error": ...}``
with a 4xx status naming the request and field; a model failure is a 500, logged; the server goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from seqadapt.serve.batcher import Batcher, ModelFailure
from seqadapt.serve.metrics import Metrics
from seqadapt.serve.requests import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ITEMS, HttpError, Item, parse_body
from seqadapt.serve.served import ServedRun

log = logging.getLogger("seqadapt.serve")


@dataclass(frozen=True)
class ServeConfig:
    """How the server batches and what it accepts (``seqadapt-serve``'s options)."""

    max_batch: int = 32
    max_wait_ms: float = 5.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_items: int = DEFAULT_MAX_ITEMS
    max_queue: int = 1024  # request objects waiting for a batch, at most; more are a 503 (retry)
    reload_interval_s: float = 2.0


class Server:
    """The state the routes share: the served run (``None`` while loading), its batcher, the metrics."""

    def __init__(self, run_dir: Path, config: ServeConfig) -> None:
        self.run_dir, self.config, self.metrics = Path(run_dir), config, Metrics()
        self.served: ServedRun | None = None
        self.batcher: Batcher | None = None
        self.load_error: str | None = None

    async def start(self) -> None:
        """Load the run (off the event loop, so /health answers 503 meanwhile), then batch and watch the folder."""
        try:
            self.served = await asyncio.to_thread(ServedRun, self.run_dir)
        except Exception as err:  # noqa: BLE001 - said by /health and the log; nothing to serve
            self.load_error = f"{type(err).__name__}: {err}"
            log.error("cannot serve %s: %s", self.run_dir, self.load_error)
            return
        self.batcher = Batcher(self.served, self.metrics, self.config.max_batch, self.config.max_wait_ms / 1000,
                               self.config.max_queue)
        log.info("serving %s: %s", self.run_dir, ", ".join(self.served.current.stream.tasks))
        await asyncio.gather(self.batcher.run(), self._watch())

    async def _watch(self) -> None:
        """Look at the run folder every ``reload_interval_s``; nothing a reload raises stops the looking."""
        while True:
            await asyncio.sleep(self.config.reload_interval_s)
            try:
                if await asyncio.to_thread(self.served.reload_if_changed):
                    self.metrics.reloads += 1
            except Exception as err:  # noqa: BLE001 - the set being served stays; /health says why
                log.exception("reloading %s failed", self.run_dir)
                self.served.reload_error = f"{type(err).__name__}: {err}"

    async def predict(self, request: Request) -> JSONResponse:
        """``POST /predict``: every outcome is a JSON response; nothing raised reaches the server."""
        arrived = time.perf_counter()
        try:
            items, listed = parse_body(await self._body(request), self.config.max_items)
            answers = await self._answers(items)
        except HttpError as err:
            retry = {"Retry-After": str(err.detail["retry_after_s"])} if "retry_after_s" in err.detail else None
            self.metrics.errors["overloaded" if retry else ERROR_KINDS.get(err.status, "invalid")] += 1
            return self._respond(err.status, err.body(), retry)
        except ModelFailure as err:
            log.error("the model failed on a batch: %s", err)
            self.metrics.errors["model"] += 1
            return self._respond(500, {"error": f"the model failed on this request's batch ({err}); the server "
                                                "goes on serving. Retry, and report it if it recurs"})
        except Exception as err:  # noqa: BLE001 - a bug of the server's own is this request's 500, not its end
            log.exception("answering a request failed")
            self.metrics.errors["server"] += 1
            return self._respond(500, {"error": f"the server failed on this request ({type(err).__name__}: {err}); "
                                                "it goes on serving. Report it with the request"})
        spent = time.perf_counter() - arrived
        for one in answers:
            self.metrics.rows[one["task"]] += 1
            self.metrics.latency.observe(spent, one["task"])
        return self._respond(200, answers if listed else answers[0])

    async def _body(self, request: Request) -> bytes:
        if self.served is None or self.batcher is None:
            raise HttpError(503, f"not ready: {self.load_error or 'the run is still loading'}")
        cap = self.config.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise HttpError(413, f"the request body is {declared} bytes; at most {cap} (--max-body-bytes)")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                raise HttpError(413, f"the request body is over {cap} bytes, the limit (--max-body-bytes)")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _answers(self, items: list[Item]) -> list[dict[str, Any]]:
        """The items' answers; any item that cannot be answered makes the request a 422 naming each such item,
        its task and the fields the task reads (the others are not answered: fix and resend)."""
        problems = [(item, self.served.check(item)) for item in items]
        if not any(problem for _, problem in problems):
            answers = await self.batcher.submit(items)
            problems = [(item, one.get("error")) for item, one in zip(items, answers)]
            if not any(problem for _, problem in problems):
                return answers
        errors = [{"index": item.index, **({"task": item.task} if item.task else {}), "error": problem,
                   "expected_fields": self.served.expected_fields(item.task)} for item, problem in problems if problem]
        raise HttpError(422, errors[0]["error"] if len(errors) == 1 else f"{len(errors)} requests cannot be answered",
                        errors=errors)

    def _respond(self, status: int, body: Any, headers: dict[str, str] | None = None) -> JSONResponse:
        self.metrics.requests[str(status)] += 1
        return JSONResponse(body, status_code=status, headers=headers)

    def tasks(self) -> JSONResponse:
        """``GET /tasks``: each served task (kind, fields, labels, learned metric and score, version, stage, where
        it was imported from), and those refused or retired with why."""
        if self.served is None:
            return self.health()
        current = self.served.current
        return JSONResponse({"version": current.version, "tasks": current.tasks, "refused": current.stream.refused,
                             "retired": current.stream.retired})

    def metrics_text(self) -> PlainTextResponse:
        """``GET /metrics`` in Prometheus' text format."""
        current = self.served.current if self.served else None
        text = self.metrics.render(len(current.stream.tasks) if current else 0, current.version if current else 0)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    def health(self) -> JSONResponse:
        if self.served is None or self.batcher is None:
            status = "failed" if self.load_error else "loading"
            return JSONResponse({"status": status, **({"error": self.load_error} if self.load_error else {})}, 503)
        current = self.served.current
        return JSONResponse({"status": "ready", "version": current.version, "tasks": current.stream.tasks,
                             "refused": current.stream.refused, "reload_error": self.served.reload_error})


ERROR_KINDS = {400: "bad_request", 413: "too_large", 422: "invalid", 503: "not_ready"}


def create_app(run_dir: Path, config: ServeConfig = ServeConfig()) -> FastAPI:
    """The application serving ``run_dir``: it loads the run in the background once it starts."""
    server = Server(run_dir, config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        work = asyncio.create_task(server.start())
        yield
        work.cancel()

    app = FastAPI(title="seqadapt-serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.server = server
    app.post("/predict")(server.predict)
    app.get("/health")(server.health)
    app.get("/tasks")(server.tasks)
    app.get("/metrics")(server.metrics_text)
    return app
