"""The one way seqadapt reads JSON it did not just write: run folders' manifests and ``results.json``, request lines.

Teams hand each other run folders, so any of these may be hostile or simply
damaged, and ``json.loads`` fails on them in ways no caller expects: a
100 000-deep ``[[[[…`` raises ``RecursionError``, a list where an object
belongs makes the first ``.get`` an ``AttributeError``, a 5 000-digit number
a bare ``ValueError``, and a file claimed to be a gigabyte would be read
whole. Here each of those is an :class:`UntrustedJsonError` naming the file
(or line) and what is wrong with it, for the caller to wrap in its own error
with the way out. Sizes are capped by the caller (bytes; each reader documents
its cap), nesting at :data:`MAX_DEPTH` levels, and :func:`check_type` /
:func:`construct` check every value the code reads against the type hints of
the dataclass or ``TypedDict`` that describes it, so a wrong-typed field is
refused where it is read, naming its key, not pages later as a ``TypeError``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import types
from pathlib import Path
from typing import Any, Literal, NotRequired, TypeVar, Union, get_args, get_origin, get_type_hints, is_typeddict

MAX_DEPTH = 64  # far more than any file seqadapt writes; keeps every later walk over the data shallow
T = TypeVar("T")


class UntrustedJsonError(ValueError):
    """JSON that is too large, undecodable, too deep, not an object or of the wrong types.

    ``problem`` completes "``where`` is …" or "``where``: ``key`` is …" (e.g.
    ``not valid JSON (…)``), so a caller can put it in its own sentence; the
    message is that sentence.
    """

    def __init__(self, where: str, problem: str, key: str = "") -> None:
        self.where, self.problem, self.key = where, problem, key
        super().__init__(f"{where}: {key} is {problem}" if key else f"{where} is {problem}")


def read_bounded(path: Path, max_bytes: int) -> bytes:
    """``path``'s bytes, refused unread when it holds more than ``max_bytes`` (also when its size lies, as in
    /proc) or is no regular file (a FIFO in a received folder would otherwise block the reader forever)."""
    handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(handle, "rb") as stream:
        status = os.fstat(handle)
        if not stat.S_ISREG(status.st_mode):
            raise UntrustedJsonError(str(path), "not a regular file")
        data = stream.read(max_bytes + 1) if status.st_size <= max_bytes else b""
    if status.st_size > max_bytes or len(data) > max_bytes:
        raise UntrustedJsonError(str(path), f"larger than the {max_bytes} bytes allowed "
                                            f"({max(status.st_size, len(data))} bytes)")
    return data


def read_json_object(path: Path, max_bytes: int) -> dict[str, Any]:
    """The JSON object in ``path`` (at most ``max_bytes`` bytes of UTF-8), or an :class:`UntrustedJsonError`."""
    return parse_json_object(read_bounded(path, max_bytes), str(path))


def parse_json_object(data: bytes | str, where: str) -> dict[str, Any]:
    """``data`` parsed as one JSON object, at most :data:`MAX_DEPTH` levels deep; ``where`` names it in errors."""
    value = parse_json(data, where)
    if not isinstance(value, dict):
        raise UntrustedJsonError(where, f"a JSON {_json_name(value)} at top level, not an object")
    return value


def parse_json(data: bytes | str, where: str) -> Any:
    """``data`` parsed as one JSON value, at most :data:`MAX_DEPTH` levels deep; ``where`` names it in errors."""
    try:
        value = json.loads(data.decode("utf-8") if isinstance(data, bytes) else data)
    except UnicodeDecodeError as err:
        raise UntrustedJsonError(where, f"not UTF-8 ({err.reason} at byte offset {err.start})") from None
    except RecursionError:
        raise UntrustedJsonError(where, f"nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as err:  # JSONDecodeError, and an integer of more digits than Python converts
        raise UntrustedJsonError(where, f"not valid JSON ({err})") from None
    if _depth(value) > MAX_DEPTH:
        raise UntrustedJsonError(where, f"nested more than {MAX_DEPTH} levels deep")
    return value


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value``, walked without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            pending += [(child, depth + 1) for child in (item.values() if isinstance(item, dict) else item)]
    return deepest


def known_fields(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """``data``'s keys that are fields of the dataclass ``cls``; others are ignored (newer files may have more)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {key: value for key, value in data.items() if key in names}


def construct(cls: type[T], data: dict[str, Any], where: str, key: str = "") -> T:
    """A ``cls`` dataclass from ``data``'s fields, each checked against its type hint (:func:`check_type`)."""
    check_type(data, cls, where, key)
    return cls(**known_fields(cls, data))


def check_type(value: Any, hint: Any, where: str, key: str = "") -> None:
    """Refuse ``value`` unless it is what ``hint`` describes, naming the file (``where``), the key path and both.

    Understands ``Any``, ``str``/``int``/``float``/``bool``/``None``, unions, ``Literal``, ``list[X]``,
    ``dict[str, X]``, ``TypedDict`` (whose ``NotRequired`` keys may be absent) and dataclasses (whose fields
    with defaults may be absent). A dataclass nested in another is only checked to be an object (or a list
    of them): its own ``from_dict`` checks it, after reading older layouts of it.
    """
    origin = get_origin(hint)
    if hint is Any:
        return
    if origin in (Union, types.UnionType):
        if not any(_fits(value, option) for option in get_args(hint)):
            raise UntrustedJsonError(where, f"{_shown(value)}, not {_hint_name(hint)}", key)
    elif origin is Literal:
        if value not in get_args(hint):
            raise UntrustedJsonError(where, f"{_shown(value)}, not one of {list(get_args(hint))}", key)
    elif origin is list:
        _require(value, list, hint, where, key)
        for index, item in enumerate(value):
            check_type(item, get_args(hint)[0], where, f"{key}[{index}]")
    elif origin is dict:
        _require(value, dict, hint, where, key)
        for name, item in value.items():
            check_type(item, get_args(hint)[1], where, f"{key}.{name}" if key else name)
    elif is_typeddict(hint) or dataclasses.is_dataclass(hint):
        _require(value, dict, hint, where, key)
        _check_fields(value, hint, where, key)
    else:
        _require(value, hint, hint, where, key)


def _check_fields(value: dict[str, Any], hint: type, where: str, key: str) -> None:
    """A TypedDict's or dataclass's keys in ``value``: required ones present, each of its hinted type."""
    hints = get_type_hints(hint, include_extras=True)
    if dataclasses.is_dataclass(hint):
        optional = {f.name for f in dataclasses.fields(hint)
                    if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING}
    else:
        optional = {name for name, field in hints.items() if get_origin(field) is NotRequired}
    missing = sorted(set(hints) - optional - set(value))
    if missing:
        raise UntrustedJsonError(where, f"an object without {', '.join(repr(name) for name in missing)}", key)
    for name, field in hints.items():
        if name in value:
            field = get_args(field)[0] if get_origin(field) is NotRequired else field
            check_type(value[name], _shallow(field), where, f"{key}.{name}" if key else name)


def _shallow(hint: Any) -> Any:
    """A nested dataclass (or list of them) as plain objects: its own ``from_dict`` checks its fields."""
    if dataclasses.is_dataclass(hint):
        return dict[str, Any]
    if get_origin(hint) is list and dataclasses.is_dataclass(get_args(hint)[0]):
        return list[dict[str, Any]]
    return hint


def _fits(value: Any, hint: Any) -> bool:
    try:
        check_type(value, hint, "value")
    except UntrustedJsonError:
        return False
    return True


def _require(value: Any, kind: Any, hint: Any, where: str, key: str) -> None:
    """``value`` is of the JSON type ``kind`` stands for (``bool`` is no number; an integer is a float)."""
    if kind is None or kind is type(None):
        fits = value is None
    elif kind is float:
        fits = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind is int:
        fits = isinstance(value, int) and not isinstance(value, bool)
    else:
        fits = isinstance(value, kind)
    if not fits:
        raise UntrustedJsonError(where, f"{_shown(value)}, not {_hint_name(hint)}", key)


def _json_name(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _shown(value: Any) -> str:
    """A value as an error shows it: its JSON type, and the value itself when short."""
    text = json.dumps(value) if isinstance(value, (str, int, float, bool)) or value is None else ""
    return f"a JSON {_json_name(value)}" + (f" ({text})" if text and len(text) <= 40 else "")


def _hint_name(hint: Any) -> str:
    """``hint`` in JSON's words: ``a string``, ``an array of numbers``, ``an object``…"""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_hint_name(option) for option in get_args(hint))
    if origin is list:
        return "an array"
    if origin is dict or is_typeddict(hint) or dataclasses.is_dataclass(hint):
        return "an object"
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false", type(None): "null"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))
