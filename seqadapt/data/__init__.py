"""Task definitions, data sources, splits and loaders."""

from seqadapt.data.loaders import make_loader
from seqadapt.data.sources import read_source
from seqadapt.data.splits import SplitSizes, TaskSplits, build_splits
from seqadapt.data.tasks import TaskSpec, load_task_spec, load_task_stream
from seqadapt.errors import DataFileError, TaskDataError, TaskDefinitionError

__all__ = [
    "DataFileError",
    "SplitSizes",
    "TaskDataError",
    "TaskDefinitionError",
    "TaskSpec",
    "TaskSplits",
    "build_splits",
    "load_task_spec",
    "load_task_stream",
    "make_loader",
    "read_source",
]
