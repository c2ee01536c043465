"""``seqadapt-predict``: answer inputs with the tasks of a finished run, one JSON line each (see :mod:`seqadapt.serving`).

Output line N always answers input N. Standard input is answered as it comes
(:mod:`seqadapt.cli.input_lines`), so an input that cannot be answered (a
blank line, bytes that are not UTF-8, a line over the length limit, a JSON
request without its fields, a task whose artefact was refused) gets an error
answer, ``{"line": N, "error": ...}``, in its place, instead of being skipped,
which would silently shift every answer after it; the error is also printed
on standard error, and the command exits with 2 once every input is answered.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import transformers

from seqadapt.answers import Request
from seqadapt.artefacts import ArtefactError
from seqadapt.cli.input_lines import DEFAULT_MAX_LINE_BYTES, arrived_batches, read_lines
from seqadapt.kinds.base import RequestError
from seqadapt.lock import RunLockedError
from seqadapt.selection import DEFAULT_SELECTOR, SELECTORS
from seqadapt.serving import LoadedStream, load_stream
from seqadapt.untrusted_json import UntrustedJsonError, parse_json_object

BLANK_FIX = "remove blank lines first, e.g. grep -v '^[[:space:]]*$'"
ICONV_FIX = "convert it first, e.g. with iconv -f latin1 -t utf-8"
INPUT_HELP = (
    "Standard input is read as UTF-8, one input per line, and answered as it comes: a plain text, or a JSON "
    'object with the task\'s own input fields, e.g. {"premise": ..., "hypothesis": ...}, {"tokens": [...]} or '
    '{"context": ..., "question": ...} (plus "task" when neither --task nor --select is given). Output line N '
    "answers input line N: a line that cannot be answered (blank, not UTF-8, longer than --max-line-bytes, a "
    'missing field, a task not served) gets {"line": N, "error": ...} instead, the error also goes to standard '
    "error, and the exit code is 2. A task whose artefact does not verify is not served and is named on standard "
    "error; the others are."
)


class InputError(ValueError):
    """An input the command cannot answer; the message names its line or argument and the fix."""


@dataclass(frozen=True)
class Input:
    """One input: its number (output line ``number`` answers it), its text, or why it has none."""

    number: int
    text: str | None = None
    error: str | None = None

    @property
    def where(self) -> str:
        return f"input line {self.number}"


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
        raise InputError(f"{where} is not valid UTF-8 text: {raw[:80]!r}. seqadapt-predict reads UTF-8; {ICONV_FIX}") from None
    if not text.strip():
        raise InputError(f"{where} is blank: there is nothing to classify")
    return text


def stdin_inputs(max_bytes: int) -> Iterator[Input]:
    """Standard input's lines as they come, each decoded as UTF-8 and checked on its own."""
    for number, raw in read_lines(sys.stdin.buffer, max_bytes):
        yield line_input(number, raw, max_bytes)


def line_input(number: int, raw: bytes | None, max_bytes: int) -> Input:
    """Line ``number`` (``None``: over ``max_bytes``) as an input, or why it cannot be one."""
    if raw is None:
        return Input(number, error=f"input line {number} is longer than {max_bytes} bytes, the limit: it was not "
                                   "read. Shorten it, or raise the limit with --max-line-bytes")
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return Input(number, error=(
            f"input line {number} is not valid UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1}: "
            f"{err.reason}): {raw[:80]!r}. seqadapt-predict reads standard input as UTF-8; {ICONV_FIX}"))
    if not line.strip():
        return Input(number, error=f"input line {number} is blank; give one input per line ({BLANK_FIX})")
    return Input(number, line)


def argument_inputs(texts: list[str]) -> list[Input]:
    """The texts given as arguments, each checked."""
    inputs = []
    for number, text in enumerate(texts, start=1):
        try:
            inputs.append(Input(number, check_text(text, f"text argument {number}")))
        except InputError as err:
            inputs.append(Input(number, error=str(err)))
    return inputs


def parse_line(line: str, where: str) -> Request:
    """A line that starts with ``{`` is a JSON request (the task's input fields, maybe ``task``); any other
    line is one plain text."""
    if not line.lstrip().startswith("{"):
        return line
    try:
        request = parse_json_object(line, where)
    except UntrustedJsonError as err:
        raise InputError(f"{where} starts with '{{' but is not a JSON object ({err.problem}): {line[:80]!r}") from None
    for key, value in request.items():  # e.g. a "\\ud800" escape: valid JSON, but no text
        if isinstance(value, str):
            check_text(value, f'{where}: "{key}"')
    return request


def request_of(item: Input, task: str | None, select: str | None) -> tuple[Request, str | None]:
    """An input's request and its task: ``task``, or none (``select`` picks it), or, without either, the
    ``task`` its JSON line names next to that task's input fields."""
    if item.error is not None or item.text is None:
        raise InputError(item.error)
    request = parse_line(item.text, item.where)
    if select is not None or task is not None:
        return request, task
    if not isinstance(request, dict) or not isinstance(request.get("task"), str):
        raise InputError(
            f'{item.where} is not a JSON object with a "task" name: {str(request)[:80]!r}. Give --task TASK to answer '
            'every line with one task, --select SELECTOR to let seqadapt pick it, or JSON lines like '
            '{"task": "sms_spam", "text": "..."} holding the task\'s own input fields'
        )
    return request, request.pop("task")


def answer_batch(stream: LoadedStream, batch: list[Input], args: argparse.Namespace) -> list[dict[str, Any]]:
    """The answers to ``batch``, in its order: predictions for the inputs that can be answered (together, so
    they share batches), and an error answer naming each other one's number and why."""
    answers: dict[int, dict[str, Any]] = {}
    good: list[tuple[Input, Request, str | None]] = []
    for item in batch:
        task = args.task
        try:
            request, task = request_of(item, args.task, args.select)
            stream.check(request, task, item.where)
            good.append((item, request, task))
        except (InputError, RequestError, ArtefactError) as err:
            answers[item.number] = error_answer(item, task, err)
    answers.update(predicted(stream, good, args.select))
    return [answers[item.number] for item in batch]


def predicted(stream: LoadedStream, good: list[tuple[Input, Request, str | None]], select: str | None) -> dict[int, dict[str, Any]]:
    """Each checked input's answer by its number, in one call where it can be
    (:meth:`~seqadapt.serving.LoadedStream.predict_each`: only an input that fails gets an error answer)."""
    if not good:
        return {}
    results = stream.predict_each([request for _, request, _ in good], None if select else [task for *_, task in good],
                                  selector=select or DEFAULT_SELECTOR)
    return {item.number: error_answer(item, task, result) if isinstance(result, Exception) else result.to_json()
            for (item, _, task), result in zip(good, results)}


def error_answer(item: Input, task: str | None, error: Exception) -> dict[str, Any]:
    """What an input that cannot be answered gets in its output line: its number, its task (if known) and why."""
    return {"line": item.number, **({"task": task} if task else {}), "error": str(error)}


def serve(args: argparse.Namespace) -> LoadedStream:
    """The run's stream (``--task``'s alone, else every task), its warnings printed as the command's own."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stream = load_stream(args.run_dir, [args.task] if args.task else None)
    for warning in caught:  # load_stream's own (refused tasks, another environment) name this caller's line
        if warning.filename == __file__:
            print(f"seqadapt-predict: warning: {warning.message}", file=sys.stderr)
        else:
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    if args.select and stream.refused:
        print(f"seqadapt-predict: --select picks among the served tasks {stream.tasks} only, not "
              f"{sorted(stream.refused)} (refused, see above)", file=sys.stderr)
    return stream


def answer_all(stream: LoadedStream, inputs: Iterable[Input], args: argparse.Namespace) -> tuple[int, int]:
    """Print an answer per input as batches arrive; returns how many inputs there were and how many failed."""
    total = failed = 0
    for batch in arrived_batches(inputs, stream.settings["eval_batch_size"]):
        for answer in answer_batch(stream, batch, args):
            if "error" in answer:
                failed += 1
                print(f"seqadapt-predict: error: {answer['error']}", file=sys.stderr)
            print(json.dumps(answer))
        sys.stdout.flush()
        total += len(batch)
    return total, failed


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def parser() -> argparse.ArgumentParser:
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
                       help="no task given: pick each input's task among the run's served tasks that can read it: from "
                            "one bare backbone pass by the tasks' stored statistics (mahalanobis, the best measured; "
                            "prototype; ranpac), or by running every task's head (entropy, calibrated_entropy)")
    parser.add_argument("--max-line-bytes", type=positive, default=DEFAULT_MAX_LINE_BYTES,
                        help="the longest input line read, in bytes without its line end (default %(default)s, 1 MiB); "
                             "a longer one gets an error answer and is never held in memory whole")
    parser.add_argument("texts", nargs="*", help="plain texts to answer; none: read one input per line from standard "
                                                 "input (UTF-8; a blank line is an error, see below)")
    return parser


def main(argv: list[str] | None = None) -> None:
    command = parser()
    args = command.parse_intermixed_args(argv)
    datasets.disable_progress_bars()  # a filter's standard error is for errors
    transformers.utils.logging.disable_progress_bar()  # "Loading weights" of the backbone
    try:
        stream = serve(args)
    except (ArtefactError, RunLockedError, KeyError, ValueError) as err:
        command.exit(2, f"seqadapt-predict: error: {err.args[0]}\n")
    inputs = argument_inputs(args.texts) if args.texts else stdin_inputs(args.max_line_bytes)
    total, failed = answer_all(stream, inputs, args)
    if not total:
        command.exit(2, "seqadapt-predict: error: no input: standard input is empty. Give texts as arguments, or one "
                        "per line on standard input\n")
    if failed:
        command.exit(2, f"seqadapt-predict: error: {failed} of {total} input(s) could not be answered; their output "
                        'lines hold {"line": N, "error": ...}\n')


if __name__ == "__main__":
    main()
