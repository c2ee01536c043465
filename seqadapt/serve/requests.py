"""``POST /predict`` bodies as received input: one request object or a list of them, each the JSON object a
``seqadapt-predict`` line holds (the task's own input fields) plus ``"task"``, or ``"select"`` to let a selector
pick the task. Everything wrong is an :class:`HttpError` naming the item and the field, never an exception
the server does not expect."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from seqadapt.answers import Request
from seqadapt.selection import SELECTORS
from seqadapt.untrusted_json import UntrustedJsonError, parse_json

DEFAULT_MAX_BODY_BYTES = 1 << 20  # 1 MiB: as seqadapt-predict's longest line
DEFAULT_MAX_ITEMS = 256


class HttpError(Exception):
    """A request the server answers with ``status`` and a JSON body ``{"error": message, ...detail}``."""

    def __init__(self, status: int, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.detail = status, message, detail

    def body(self) -> dict[str, Any]:
        return {"error": self.message, **self.detail}


@dataclass(frozen=True)
class Item:
    """One request of a body: its input fields, and its ``task`` or the ``selector`` that picks one."""

    index: int
    request: Request
    task: str | None
    selector: str | None

    @property
    def where(self) -> str:
        return f"request {self.index}"


def parse_body(data: bytes, max_items: int = DEFAULT_MAX_ITEMS) -> tuple[list[Item], bool]:
    """The items of a body and whether it was a list (answered with a list) or one object (one answer)."""
    try:
        value = parse_json(data, "the request body")
    except UntrustedJsonError as err:
        raise HttpError(400, str(err)) from None
    listed = isinstance(value, list)
    values = value if listed else [value]
    if not values:
        raise HttpError(400, "the request body is an empty list: send one request object or a list of them")
    if len(values) > max_items:
        raise HttpError(413, f"the request body holds {len(values)} requests; at most {max_items} per body "
                             "(--max-items): split it")
    return [item_of(index, one) for index, one in enumerate(values)], listed


def item_of(index: int, value: Any) -> Item:
    """One request object checked for its routing keys; its input fields are the task kind's to check."""
    where = f"request {index}"
    if not isinstance(value, dict):
        raise HttpError(422, f"{where} is a JSON {type(value).__name__}, not an object with the task's input fields",
                        index=index)
    fields = dict(value)
    task, selector = fields.pop("task", None), fields.pop("select", None)
    if task is not None and selector is not None:
        raise HttpError(422, f'{where} gives both "task" and "select": give the task, or let a selector pick it',
                        index=index, field="select")
    if task is None and selector is None:
        raise HttpError(422, f'{where} names no "task" and no "select" (one of {sorted(SELECTORS)}): say which task '
                        'answers it, e.g. {"task": "sms_spam", "text": "..."}, or let a selector pick it',
                        index=index, field="task")
    if task is not None and not isinstance(task, str):
        raise HttpError(422, f'{where}: "task" must be a task name, not {task!r}', index=index, field="task")
    if selector is not None and selector not in SELECTORS:
        raise HttpError(422, f'{where}: "select" is {selector!r}; choose one of {sorted(SELECTORS)}', index=index,
                        field="select")
    for key, field_value in fields.items():  # e.g. a "\ud800" escape: valid JSON, but no text
        if isinstance(field_value, str):
            try:
                field_value.encode("utf-8")
            except UnicodeEncodeError:
                raise HttpError(422, f'{where}: "{key}" is not valid Unicode text', index=index, field=key) from None
    return Item(index, fields, task, selector)
