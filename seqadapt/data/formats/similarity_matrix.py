"""A square matrix of human similarity scores between documents kept in a second file, one document per line.

This is how the Lee corpus ships (gensim's ``similarities0-1.txt`` and
``lee.cor``): row ``i``, column ``j`` of the matrix scores documents ``i`` and
``j``. A pair task needs one example per unordered pair, so the parser yields
the rows ``doc_a``, ``doc_b``, ``similarity`` for every ``i < j``. The matrix
may be full (and then must be symmetric) or upper-triangular (zeros below the
diagonal), since both forms circulate; anything else would make the score of a
pair depend on its order, so it is refused.

Options (the task's ``source`` mapping): ``documents`` names the documents
file inside the same package (``package_file``) or relative to the matrix's
folder (``local_files``); ``documents_encoding`` (default ``utf-8``) is how to
decode it, since ``lee.cor`` is Latin-1 while the source reader assumes UTF-8.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from datasets import Dataset

from seqadapt.backbone import package_path
from seqadapt.errors import DataFileError

_SEPARATOR = re.compile(r"[\s,;]+")


def read_similarity_matrix(path: Path, text: str, options: dict[str, Any]) -> Dataset:
    """One row per unordered pair of documents: their two texts and the matrix's score (as written)."""
    matrix = _matrix(path, text)
    documents = _documents(path, options)
    if len(documents) != len(matrix):
        raise DataFileError(
            f"{path} scores {len(matrix)} documents but {options['documents']} holds {len(documents)} non-blank "
            "lines; give one document per line, in the matrix's order"
        )
    _check_symmetric(path, matrix)
    pairs = [(i, j) for i in range(len(matrix)) for j in range(i + 1, len(matrix))]
    return Dataset.from_dict({
        "doc_a": [documents[i] for i, _ in pairs],
        "doc_b": [documents[j] for _, j in pairs],
        "similarity": [matrix[i][j] for i, j in pairs],
    })


def _matrix(path: Path, text: str) -> list[list[str]]:
    """The non-blank lines split on tabs, spaces, commas or semicolons; every line as long as there are lines."""
    rows = [_SEPARATOR.split(line.strip()) for line in text.splitlines() if line.strip()]
    for number, row in enumerate(rows, start=1):
        if len(row) != len(rows):
            raise DataFileError(
                f"{path}: matrix row {number} has {len(row)} values but there are {len(rows)} rows; a similarity "
                "matrix is square (one row and one column per document)"
            )
        for column, value in enumerate(row, start=1):
            try:
                float(value)
            except ValueError:
                raise DataFileError(f"{path}: matrix row {number}, column {column} is {value!r}, not a number") from None
    return rows


def _check_symmetric(path: Path, matrix: list[list[str]]) -> None:
    """Full and symmetric, or upper-triangular: either way the upper triangle holds every pair's score."""
    below = [(i, j) for i in range(len(matrix)) for j in range(i)]
    if all(float(matrix[i][j]) == 0.0 for i, j in below):
        return
    for i, j in below:
        if float(matrix[i][j]) != float(matrix[j][i]):
            raise DataFileError(
                f"{path}: the matrix is neither symmetric nor upper-triangular: row {i + 1}, column {j + 1} is "
                f"{matrix[i][j]} but row {j + 1}, column {i + 1} is {matrix[j][i]}; fix the file so each pair has "
                "one score"
            )


def _documents(path: Path, options: dict[str, Any]) -> list[str]:
    """The documents file's non-blank lines, decoded with ``documents_encoding``."""
    if "documents" not in options:
        raise DataFileError(
            f"{path} is a similarity matrix, but source has no 'documents'; add `documents: <file with one "
            "document per line>` under source"
        )
    if "package" in options:
        location = package_path(options["package"], options["documents"])
    else:
        location = path.parent / options["documents"]
        if not location.is_file():
            raise DataFileError(f"documents file {location} (source.documents, next to {path.name}) not found")
    encoding = options.get("documents_encoding", "utf-8")
    try:
        text = location.read_bytes().decode(encoding)
    except UnicodeDecodeError as err:
        raise DataFileError(
            f"{location} is not valid {encoding} (byte offset {err.start}); set source.documents_encoding to the "
            "file's encoding (e.g. latin-1)"
        ) from None
    except LookupError:
        raise DataFileError(f"source.documents_encoding '{encoding}' is not an encoding Python knows") from None
    return [line.strip() for line in text.splitlines() if line.strip()]
