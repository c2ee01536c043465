"""What a message shows of something long: the first items of a list and a count of the rest, the start of a
text, the two ends of a long message.

A task definition may declare 100,000 labels, and a data file may hold a megabyte on one line; a warning that
lists them all prints megabytes and hides the fix at its end. Every message that shows data goes through these.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

SHOWN_ITEMS = 10
ITEM_WIDTH = 200  # a path fits; a megabyte label does not
MESSAGE_WIDTH = 2000


def listed(items: Iterable[Any], limit: int = SHOWN_ITEMS) -> str:
    """``['a', 'b', …] and 99990 more``: the first ``limit`` items (each repr clipped), then how many are left out."""
    items = list(items)
    shown = ", ".join(clip(repr(item), ITEM_WIDTH) for item in items[:limit])
    return f"[{shown}]" if len(items) <= limit else f"[{shown}, …] and {len(items) - limit} more"


def clip(text: str, width: int = 90) -> str:
    """``text`` on one line (whitespace runs made one space), cut to ``width`` characters with a trailing …."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def clip_middle(text: str, width: int = MESSAGE_WIDTH) -> str:
    """``text`` with its middle left out when it is longer than ``width``: a message's start says what is wrong
    and its end says the fix, so both are kept."""
    if len(text) <= width:
        return text
    head, tail = width * 3 // 4, width // 4
    return f"{text[:head]} … [{len(text) - head - tail} characters left out] … {text[-tail:]}"
