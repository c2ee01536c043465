"""Per-task adapters: each method's config and modules, and the injector that places them in a backbone."""

from seqadapt.adapters.config import AdapterConfig
from seqadapt.adapters.ia3 import IA3Config
from seqadapt.adapters.injector import TaskAdapters, UnsupportedArchitectureError, shared_state, shared_tensor_reader
from seqadapt.adapters.layer import BottleneckAdapter, TaskRouter
from seqadapt.adapters.lora import LoraConfig
from seqadapt.adapters.methods import METHODS, MethodConfig, adapter_config, method_of
from seqadapt.adapters.parallel import ParallelConfig

__all__ = [
    "METHODS",
    "AdapterConfig",
    "BottleneckAdapter",
    "IA3Config",
    "LoraConfig",
    "MethodConfig",
    "ParallelConfig",
    "TaskAdapters",
    "TaskRouter",
    "UnsupportedArchitectureError",
    "adapter_config",
    "method_of",
    "shared_state",
    "shared_tensor_reader",
]
