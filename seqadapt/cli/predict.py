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
from pathlib import Path

import datasets
import transformers

from seqadapt.answers import Request
from seqadapt.artefacts import ArtefactError
from seqadapt.selection import DEFAULT_SELECTOR, SELECTORS
from seqadapt.serving import load_stream

BLANK_FIX = "remove blank lines first, e.g. grep -v '^[[:space:]]*$'"
INPUT_HELP = (
    "Standard input is read as UTF-8, one input per line: a plain text, or a JSON object with the task's own "
    'input fields, e.g. {"premise": ..., "hypothesis": ...}, {"tokens": [...]} or {"context": ..., "question": ...} '
    '(plus "task" when neither --task nor --select is given). Output line N answers input line N, so a blank '
    "line, a line that is not UTF-8, a missing field or an empty input is an error naming the line (exit code 2), "
    "never skipped."
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


def parse_line(line: str, number: int) -> Request:
    """A line that starts with ``{`` is a JSON request (the task's input fields, maybe ``task``); any other
    line is one plain text."""
    if not line.lstrip().startswith("{"):
        return line
    try:
        request = json.loads(line)
    except json.JSONDecodeError as err:
        raise InputError(f"input line {number} starts with '{{' but is not a JSON object ({err.msg}): {line[:80]!r}") from None
    if not isinstance(request, dict):
        raise InputError(f"input line {number} is not a JSON object: {line[:80]!r}")
    for key, value in request.items():  # e.g. a "\\ud800" escape: valid JSON, but no text
        if isinstance(value, str):
            check_text(value, f'input line {number}: "{key}"')
    return request


def read_requests(lines: list[str], task: str | None, select: str | None = None) -> tuple[list[Request], list[str] | None]:
    """Requests and their tasks: under ``task``, or picked by a selector (``select``; no tasks returned), or,
    without either, each a JSON line naming its ``task`` next to that task's input fields."""
    requests = [parse_line(line, number) for number, line in enumerate(lines, start=1)]
    if select is not None:
        return requests, None
    if task is not None:
        return requests, [task] * len(requests)
    tasks = []
    for number, request in enumerate(requests, start=1):
        if not isinstance(request, dict) or not isinstance(request.get("task"), str):
            raise InputError(
                f'input line {number} is not a JSON object with a "task" name: {str(request)[:80]!r}. Give --task TASK '
                'to answer every line with one task, --select SELECTOR to let seqadapt pick it, or JSON lines like '
                '{"task": "sms_spam", "text": "..."} holding the task\'s own input fields'
            )
        tasks.append(request.pop("task"))
    return requests, tasks


def read_inputs(texts: list[str]) -> list[str]:
    """The texts given as arguments (each checked), or else standard input's lines."""
    for number, text in enumerate(texts, start=1):
        check_text(text, f"text argument {number}")
    return texts or read_stdin_lines()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="seqadapt-predict",
        description="Answer inputs with the tasks of a finished run (labels, scores, tags, answer spans); prints "
                    "one JSON line per input.",
        epilog=INPUT_HELP,
    )
    parser.add_argument("run_dir", type=Path, help="a run directory (holds run_config.yaml and artefacts/)")
    given = parser.add_mutually_exclusive_group()
    given.add_argument("--task", help="the task whose adapters and head answer the inputs; without it (and without "
                                      '--select), each input is a JSON line {"task": ..., <its input fields>} and '
                                      "batches mix tasks")
    given.add_argument("--select", choices=sorted(SELECTORS),
                       help="no task given: pick each input's task among the run's tasks that can read it: from one "
                            "bare backbone pass by the tasks' stored statistics (mahalanobis, the best measured; "
                            "prototype; ranpac), or by running every task's head (entropy, calibrated_entropy)")
    parser.add_argument("texts", nargs="*", help="plain texts to answer; none: read one input per line from standard "
                                                 "input (UTF-8; a blank line is an error, see below)")
    args = parser.parse_intermixed_args(argv)
    datasets.disable_progress_bars()  # a filter's standard error is for errors
    transformers.utils.logging.disable_progress_bar()  # "Loading weights" of the backbone
    try:
        requests, tasks = read_requests(read_inputs(args.texts), args.task, args.select)
        stream = load_stream(args.run_dir, None if tasks is None else sorted(set(tasks)))
        predictions = stream.predict(requests, tasks, selector=args.select or DEFAULT_SELECTOR)
    except (ArtefactError, KeyError, ValueError) as err:
        parser.exit(2, f"seqadapt-predict: error: {err.args[0]}\n")
    for prediction in predictions:
        print(json.dumps(prediction.to_json()))


if __name__ == "__main__":
    main()
