"""The task-stream driver: the plan, the stage loop, the guard's verification, and the callbacks around it."""

from seqadapt.stream.callbacks import StreamCallback
from seqadapt.stream.loaders import LoaderConfig
from seqadapt.stream.plan import Stage, plan_stages
from seqadapt.stream.run import StreamRun

__all__ = ["LoaderConfig", "Stage", "StreamCallback", "StreamRun", "plan_stages"]
