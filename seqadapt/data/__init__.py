"""Task definitions, data sources, splits and loaders."""

from seqadapt.data.loaders import make_loader
from seqadapt.data.sources import DataFileError, read_source
from seqadapt.data.splits import Examples, SplitSizes, TaskDataError, TaskSplits, build_splits
from seqadapt.data.tasks import TaskDefinitionError, TaskSpec, load_task_spec, load_task_stream

__all__ = [
    "DataFileError",
    "Examples",
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
