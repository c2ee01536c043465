"""Fingerprints of a split's rows: the same rows hash alike, any change to them does not."""

from datasets import Dataset

from seqadapt.evaluation import rows_sha256

ROWS = {"text": ["a red house", "the blue river"], "label": [0, 1]}


def test_the_rows_fingerprint_follows_the_rows_and_nothing_else():
    fingerprint = rows_sha256(Dataset.from_dict(ROWS))
    assert fingerprint == rows_sha256(Dataset.from_dict({"label": [0, 1], "text": list(ROWS["text"])}))  # column order
    changed = [{**ROWS, "text": ["a red house", "the blue river!"]}, {**ROWS, "label": [1, 0]},
               {"text": ROWS["text"][::-1], "label": ROWS["label"][::-1]}, {"text": ROWS["text"][:1], "label": [0]}]
    assert len({fingerprint, *(rows_sha256(Dataset.from_dict(rows)) for rows in changed)}) == 1 + len(changed)
