"""A three-task toy stream for a continual method, on a tiny random BERT (as tests/stream/test_run.py's)."""

from __future__ import annotations

from pathlib import Path

from seqadapt.adapters import AdapterConfig, LoraConfig
from seqadapt.continual import make_plugin
from seqadapt.data import SplitSizes, build_splits, load_task_stream, read_source
from seqadapt.model import OptimConfig, SeqAdaptModule
from seqadapt.selection import SelectionConfig
from seqadapt.strategies import STRATEGIES
from seqadapt.stream import LoaderConfig, StreamRun
from tests.conftest import tiny_model
from tests.stream.test_run import ORDER, trainer


def method_stream(task_dir: Path, tokenizer, out: Path, strategy: str, order: list[str] = ORDER,
                  resume: bool = False, callbacks=(), make_trainer=trainer, **settings) -> StreamRun:
    """``strategy`` (with ``settings`` as its ``strategy.*`` keys) over ``order``, in report mode."""
    adapter = LoraConfig(rank=4) if strategy == "olora" else AdapterConfig(bottleneck=8)
    module = SeqAdaptModule(
        tiny_model(), adapter, strategy=STRATEGIES[strategy], optim=OptimConfig(learning_rate=5e-3),
        selection=SelectionConfig(), continual=make_plugin(STRATEGIES[strategy].continual, settings,
                                                           getattr(adapter, "method", "bottleneck")),
    )
    specs = load_task_stream(order, task_dir)
    tasks = [build_splits(s, read_source(s), SplitSizes(train=96, val=16, test=48)) for s in specs]
    return StreamRun(module, tasks, tokenizer, output_dir=out, make_trainer=make_trainer, guard_mode="report",
                     loaders=LoaderConfig(max_length=16, batch_size=16, eval_batch_size=32), selectors=(), resume=resume,
                     callbacks=list(callbacks))
