"""The real ``seqadapt-serve`` application under uvicorn on a free loopback port, in a thread of the test."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import uvicorn

from bench.serve import free_port
from seqadapt.serve import ServeConfig, create_app


@contextlib.contextmanager
def running(run_dir: Path, ready: bool = True, **config) -> Iterator[str]:
    """The server's base URL once it answers /health (ready, unless ``ready`` is False: once it answers at all)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(run_dir, ServeConfig(**config)), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            health = httpx.get(f"{url}/health", timeout=5)
            if health.status_code == 200 or (not ready and health.json().get("status") != "loading"):
                break
        time.sleep(0.1)
    else:
        raise TimeoutError(f"the server on {url} did not get ready")
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(30)
