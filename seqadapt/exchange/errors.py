"""The one error of moving adapters between libraries: it says what cannot be done, why, and what would work."""

from __future__ import annotations


class ExchangeError(ValueError):
    """An export that cannot be written exactly, or a folder that cannot be imported as it is; nothing was written."""


def refused(what: str, why: str, instead: str) -> ExchangeError:
    """``what`` cannot be done because ``why``; ``instead`` is the way that works."""
    return ExchangeError(f"{what}: {why}. {instead}")
