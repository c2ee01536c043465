"""Inputs of one text or a pair of texts (``text_field`` / ``text_fields``), shared by classification and
regression: canonical columns ``text`` (and ``text_pair``), encoded as one sequence or one pair."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from datasets import Dataset
from transformers import PreTrainedTokenizerBase

from seqadapt.errors import TaskDataError, TaskDefinitionError
from seqadapt.kinds.base import RequestError, mapped

if TYPE_CHECKING:
    from seqadapt.data.tasks import TaskSpec

COLUMNS = ("text", "text_pair")


def check_text_fields(spec: TaskSpec) -> None:
    """One text field, or exactly two in ``text_fields`` (a pair)."""
    if spec.text_fields and len(spec.text_fields) != 2:
        raise TaskDefinitionError(
            f"task '{spec.name}' lists {len(spec.text_fields)} text_fields {list(spec.text_fields)}; give two "
            "(a pair, e.g. [premise, hypothesis]) or use text_field for one"
        )


def require_columns(spec: TaskSpec, rows: Dataset, split: str, columns: dict[str, str]) -> None:
    """Every source column the task names exists; the error names the key to fix (``columns``: column -> key)."""
    for column, key in columns.items():
        if column not in rows.column_names:
            raise TaskDataError(
                f"task '{spec.name}' ({split} split): column '{column}' is not in the data "
                f"(columns: {rows.column_names}); fix {key} in tasks/{spec.name}.yaml"
            )


def text_columns(spec: TaskSpec, rows: Dataset, split: str, keep: list[int]) -> dict[str, list[str]]:
    """The canonical text column(s) of the rows ``keep``, checked to exist."""
    keys = {field: ("text_fields" if spec.text_fields else "text_field") for field in spec.inputs}
    require_columns(spec, rows, split, keys)
    # each column read once: reading a row at a time costs datasets 5 tens of seconds on a large source
    columns = {column: rows[field][:] for column, field in zip(COLUMNS, spec.inputs)}
    return {column: [str(values[i]) for i in keep] for column, values in columns.items()}


def joined(rows: Dataset) -> list[str]:
    """Each row's text, a pair's two texts joined by a newline: what counts as the same input."""
    if "text_pair" in rows.column_names:
        return [f"{a}\n{b}" for a, b in zip(rows["text"], rows["text_pair"])]
    return list(rows["text"])


def shown(row: dict[str, Any]) -> str:
    return f"{row['text']} ||| {row['text_pair']}" if "text_pair" in row else row["text"]


def encode_texts(rows: Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int) -> Dataset:
    """Tokenised texts (pairs truncated longest-first), canonical text columns removed, ``label`` -> ``labels``."""
    pair = "text_pair" in rows.column_names

    def tokenize(batch: dict[str, list]) -> Any:
        return tokenizer(batch["text"], batch["text_pair"] if pair else None, truncation=True, max_length=max_length)

    columns = [column for column in COLUMNS if column in rows.column_names]
    return mapped(rows, tokenize, batched=True, remove_columns=columns).rename_column("label", "labels")


def text_request(
    spec: TaskSpec, request: dict[str, Any], where: str, fields: tuple[str, ...] | None = None
) -> dict[str, str]:
    """A request's text field(s) (``fields``, by default the task's ``spec.inputs``) as canonical columns; a
    missing field or one that is not text names ``where``."""
    fields = spec.inputs if fields is None else fields
    texts = request_texts(spec, request, where, fields)
    return {column: texts[field] for column, field in zip(COLUMNS, fields)}


def request_texts(spec: TaskSpec, request: dict[str, Any], where: str, fields: tuple[str, ...]) -> dict[str, str]:
    """Each of a request's ``fields`` (any number: a text_to_text task may name several), by name; a missing field
    or one that is not non-blank text names ``where`` and every field the task reads."""
    texts = {}
    for field in fields:
        value = request.get(field)
        if not isinstance(value, str) or not value.strip():
            problem = "is missing" if field not in request else f"must be non-blank text, not {value!r}"
            raise RequestError(
                f'{where}: "{field}" {problem}; task \'{spec.name}\' reads {list(fields)}'
            )
        texts[field] = value
    return texts
