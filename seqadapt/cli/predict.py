"""``seqadapt-predict``: answer inputs with the tasks of a finished run, one JSON line each (see :mod:`seqadapt.serving`)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from seqadapt.artefacts import ArtefactError
from seqadapt.selection import SELECTORS
from seqadapt.serving import load_stream


def read_requests(texts: list[str], task: str | None, select: str | None = None) -> tuple[list[str], list[str] | None]:
    """Texts and their tasks: plain texts under ``task``, plain texts whose task a selector picks (``select``;
    no tasks returned), or, without either, JSON lines {"text": ..., "task": ...}."""
    if select is not None:
        return texts, None
    if task is not None:
        return texts, [task] * len(texts)
    requests = []
    for number, line in enumerate(texts, start=1):
        try:
            request = json.loads(line)
            requests.append((request["text"], request["task"]))
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ValueError(
                f'input line {number} is not a JSON object with "text" and "task": {line[:80]!r}. '
                "Give --task TASK to classify plain texts with one task, or --select SELECTOR to let seqadapt pick the task"
            ) from None
    return [text for text, _ in requests], [name for _, name in requests]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="seqadapt-predict",
        description="Classify texts with the tasks of a finished run; prints one JSON line per text.",
    )
    parser.add_argument("run_dir", type=Path, help="a run directory (holds run_config.yaml and artefacts/)")
    given = parser.add_mutually_exclusive_group()
    given.add_argument("--task", help="the task whose adapters and head classify the texts; without it (and without "
                                      '--select), each input is a JSON line {"text": ..., "task": ...} and batches mix tasks')
    given.add_argument("--select", choices=sorted(SELECTORS),
                       help="no task given: pick each text's task among the run's tasks, by the most certain head "
                            "(entropy) or the nearest class prototype (prototype)")
    parser.add_argument("texts", nargs="*", help="texts to classify; none: read one per line from standard input")
    args = parser.parse_intermixed_args(argv)
    lines = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    try:
        texts, tasks = read_requests(lines, args.task, args.select)
        stream = load_stream(args.run_dir, None if tasks is None else sorted(set(tasks)))
        predictions = stream.predict(texts, tasks, selector=args.select or "entropy")
    except (ArtefactError, KeyError, ValueError) as err:
        parser.exit(2, f"seqadapt-predict: error: {err.args[0]}\n")
    for prediction in predictions:
        print(json.dumps(asdict(prediction)))


if __name__ == "__main__":
    main()
