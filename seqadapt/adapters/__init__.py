"""Bottleneck adapters: config, layers, and the injector that places them in a backbone."""

from seqadapt.adapters.config import AdapterConfig
from seqadapt.adapters.injector import TaskAdapters, UnsupportedArchitectureError, shared_state, shared_tensor_reader
from seqadapt.adapters.layer import BottleneckAdapter, TaskRouter

__all__ = [
    "AdapterConfig",
    "BottleneckAdapter",
    "TaskAdapters",
    "TaskRouter",
    "UnsupportedArchitectureError",
    "shared_state",
    "shared_tensor_reader",
]
