"""Adapters that travel: a task exported to PEFT or AdapterHub ``adapters`` folders, and such folders imported as
tasks (``tasks.imports``), exactly or refused with the reason (docs/how-to/peft-and-adapterhub.md)."""

from seqadapt.exchange.errors import ExchangeError
from seqadapt.exchange.export import ExportReport, export_task
from seqadapt.exchange.folder import read_folder

__all__ = ["ExchangeError", "ExportReport", "export_task", "read_folder"]
