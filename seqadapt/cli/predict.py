"""``seqadapt-predict``: answer inputs with the tasks of a finished run, one JSON line each (see :mod:`seqadapt.serving`).

Output line N always answers input N: an input that cannot be answered (a
blank line, bytes that are not UTF-8, a JSON request without a text) stops
the command with an error naming its line, before anything is printed,
instead of being skipped, which would silently shift every answer after it.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import datasets

from seqadapt.artefacts import ArtefactError
from seqadapt.selection import SELECTORS
from seqadapt.serving import load_stream

BLANK_FIX = "remove blank lines first, e.g. grep -v '^[[:space:]]*$'"
INPUT_HELP = (
    "Standard input is read as UTF-8, one text (or one JSON request) per line. Output line N answers input "
    "line N, so a blank line, a line that is not UTF-8 or an empty input is an error naming the line (exit "
    "code 2), never skipped."
)


class InputError(ValueError):
    """An input the command cannot answer; the message names its line or argument and the fix."""


def check_text(text: object, where: str) -> str:
    """``text`` if it is a non-blank string of valid Unicode; otherwise an :class:`InputError` naming ``where``."""
    if not isinstance(text, str):
        raise InputError(f"{where} must be a string, not {type(text).__name__} ({text!r})")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # undecodable argv bytes arrive as lone surrogates (surrogateescape)
        try:
            raw: bytes = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a surrogate that stands for no byte (a JSON "\\ud800" escape)
            raw = text.encode("utf-8", "backslashreplace")
        raise InputError(
            f"{where} is not valid UTF-8 text: {raw[:80]!r}. seqadapt-predict reads UTF-8; convert it first, "
            "e.g. with iconv -f latin1 -t utf-8"
        ) from None
    if not text.strip():
        raise InputError(f"{where} is blank: there is nothing to classify")
    return text


def read_stdin_lines() -> list[str]:
    """Standard input's lines, decoded as UTF-8 line by line so an error can name the line."""
    buffer = getattr(sys.stdin, "buffer", None)
    data = buffer.read() if buffer is not None else sys.stdin.read().encode("utf-8", "surrogateescape")
    if not data.strip():
        raise InputError(
            "no input: standard input is empty" + (" or blank" if data else "")
            + ". Give texts as arguments, or one per line on standard input"
        )
    lines = []
    for number, raw in enumerate(data.removesuffix(b"\n").split(b"\n"), start=1):
        raw = raw.removesuffix(b"\r")
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise InputError(
                f"input line {number} is not valid UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1}: "
                f"{err.reason}): {raw[:80]!r}. "
                "seqadapt-predict reads standard input as UTF-8; convert it first, e.g. with iconv -f latin1 -t utf-8"
            ) from None
        if not line.strip():
            raise InputError(f"input line {number} is blank; give one input per line ({BLANK_FIX})")
        lines.append(line)
    return lines


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
        check_text(requests[-1][0], f'input line {number}: "text"')
        if not isinstance(requests[-1][1], str):
            raise InputError(f'input line {number}: "task" must be a task name, not {requests[-1][1]!r}')
    return [text for text, _ in requests], [name for _, name in requests]


def read_inputs(texts: list[str]) -> list[str]:
    """The texts given as arguments (each checked), or else standard input's lines."""
    for number, text in enumerate(texts, start=1):
        check_text(text, f"text argument {number}")
    return texts or read_stdin_lines()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="seqadapt-predict",
        description="Classify texts with the tasks of a finished run; prints one JSON line per text.",
        epilog=INPUT_HELP,
    )
    parser.add_argument("run_dir", type=Path, help="a run directory (holds run_config.yaml and artefacts/)")
    given = parser.add_mutually_exclusive_group()
    given.add_argument("--task", help="the task whose adapters and head classify the texts; without it (and without "
                                      '--select), each input is a JSON line {"text": ..., "task": ...} and batches mix tasks')
    given.add_argument("--select", choices=sorted(SELECTORS),
                       help="no task given: pick each text's task among the run's tasks, by the most certain head "
                            "(entropy) or the nearest class prototype (prototype)")
    parser.add_argument("texts", nargs="*", help="texts to classify; none: read one per line from standard input "
                                                 "(UTF-8; a blank line is an error, see below)")
    args = parser.parse_intermixed_args(argv)
    datasets.disable_progress_bars()  # a filter's standard error is for errors
    try:
        texts, tasks = read_requests(read_inputs(args.texts), args.task, args.select)
        stream = load_stream(args.run_dir, None if tasks is None else sorted(set(tasks)))
        predictions = stream.predict(texts, tasks, selector=args.select or "entropy")
    except (ArtefactError, KeyError, ValueError) as err:
        parser.exit(2, f"seqadapt-predict: error: {err.args[0]}\n")
    for prediction in predictions:
        print(json.dumps(asdict(prediction)))


if __name__ == "__main__":
    main()
