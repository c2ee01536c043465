"""``seqadapt-serve``: serve every task of a finished run over HTTP.

    seqadapt-serve RUN_DIR [--host 127.0.0.1] [--port 8000] [--max-batch 32] [--max-wait-ms 5]

Built on FastAPI and uvicorn: one process, one event loop that accepts requests while a worker thread answers
batches, so the served set can be swapped between batches (a growth, retrain or retire of the run is picked up
without a restart) and metrics need no cross-process plumbing. Loopback by default: put it behind a proxy to
expose it.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import datasets
import transformers
import uvicorn

from seqadapt.cli import described
from seqadapt.cli.predict import positive
from seqadapt.serve import ServeConfig, create_app
from seqadapt.serve.requests import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ITEMS


def parser() -> argparse.ArgumentParser:
    command = argparse.ArgumentParser(prog="seqadapt-serve", description=described(__doc__),
                                      epilog="Routes: POST /predict, GET /tasks, GET /health, GET /metrics "
                                             "(docs/how-to/serve.md).")
    command.add_argument("run_dir", type=Path, help="a finished run's directory")
    command.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: loopback only)")
    command.add_argument("--port", type=int, default=8000)
    command.add_argument("--max-batch", type=positive, default=32,
                         help="request objects answered together at most (one dynamic batch; default %(default)s)")
    command.add_argument("--max-wait-ms", type=float, default=5.0,
                         help="how long the first waiting request waits for others to join its batch (default 5)")
    command.add_argument("--max-body-bytes", type=positive, default=DEFAULT_MAX_BODY_BYTES,
                         help="the largest request body read (default %(default)s; a larger one gets a 413, unread)")
    command.add_argument("--max-items", type=positive, default=DEFAULT_MAX_ITEMS,
                         help="request objects per body at most (default %(default)s)")
    command.add_argument("--max-queue", type=positive, default=1024,
                         help="request objects waiting for a batch at most; more get a 503 with Retry-After (default %(default)s)")
    command.add_argument("--reload-interval", type=float, default=2.0,
                         help="seconds between looks at the run folder for new, retrained or retired tasks")
    return command


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    config = ServeConfig(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, max_body_bytes=args.max_body_bytes,
                         max_items=args.max_items, max_queue=args.max_queue, reload_interval_s=args.reload_interval)
    uvicorn.run(create_app(args.run_dir, config), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
