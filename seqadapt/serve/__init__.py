"""``seqadapt-serve``: one HTTP server for every task of a run, batching requests across tasks and picking up the
tasks the run gains, retrains or retires without a restart (docs/how-to/serve.md)."""

from seqadapt.serve.app import ServeConfig, create_app

__all__ = ["ServeConfig", "create_app"]
