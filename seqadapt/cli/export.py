"""``seqadapt-export``: one task of a finished run as a PEFT or AdapterHub folder, exactly or not at all.

    seqadapt-export RUN_DIR --task NAME --to peft OUT_DIR         # LoRA / (IA)^3 for PeftModel.from_pretrained
    seqadapt-export RUN_DIR --task NAME --to adapters OUT_DIR     # for adapters' model.load_adapter
    seqadapt-export RUN_DIR --task NAME --to peft OUT_DIR --no-head   # the adapter alone (vLLM serves a LoRA so)

What a library would compute differently (a bottleneck adapter in PEFT, adapters' IA3 on the feed-forward input,
a head its head types cannot express) is refused with the reason and what works; nothing is written then.
Exit codes: 0 written; 2 refused or bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from seqadapt.cli import described
from seqadapt.artefacts import ArtefactError
from seqadapt.console import configure_console
from seqadapt.exchange.errors import ExchangeError
from seqadapt.exchange.export import LIBRARIES, ExportReport, export_task
from seqadapt.saved_config import SavedConfigError


def parser() -> argparse.ArgumentParser:
    command = argparse.ArgumentParser(prog="seqadapt-export", description=described(__doc__),
                                      epilog="Exit codes: 0 written; 2 refused or bad input.")
    command.add_argument("run_dir", type=Path, help="a finished run's directory")
    command.add_argument("out_dir", type=Path, help="the folder to write (must not exist, or be empty)")
    command.add_argument("--task", required=True, help="the task to export")
    command.add_argument("--to", required=True, choices=sorted(LIBRARIES), help="the library whose format to write")
    command.add_argument("--no-head", action="store_true",
                         help="the adapter alone, for the library (and vLLM); the head goes into seqadapt_head.safetensors")
    return command


def report_lines(report: ExportReport) -> list[str]:
    """What was written and how to use it, for the console."""
    files = ", ".join(f"{name} ({size:,} bytes)" for name, size in sorted(report.files.items()))
    return [f"wrote {report.out_dir} for {report.library}: {files}", f"head: {report.head}",
            "load it with:", *(f"  {line}" for line in report.load), *(f"note: {note}" for note in report.notes)]


def main(argv: list[str] | None = None) -> None:
    command = parser()
    args = command.parse_args(argv)
    configure_console()
    try:
        report = export_task(args.run_dir, args.task, args.to, args.out_dir, head=not args.no_head)
    except (ExchangeError, ArtefactError, SavedConfigError, OSError) as err:
        command.exit(2, f"seqadapt-export: error: {err}\n")
    print("\n".join(report_lines(report)))


if __name__ == "__main__":
    main()
