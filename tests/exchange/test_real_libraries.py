"""Exported folders loaded by the real PEFT and AdapterHub ``adapters`` (``bench/.venv-peers``, made by
``bash .ci/setup``): every supported method, on a BERT-like encoder and a Llama-like decoder, with each head type,
computes what seqadapt computes; each folder imports back to the same tensors; each unsupported export is
refused with its reason. The expected outputs are the libraries' own, computed in their environment from the
files (``bench/exchange_peers.py`` imports no seqadapt)."""

from __future__ import annotations

import os

import pytest

from bench.exchange import TOLERANCE, cases, prove, refusals
from bench.run import PEERS_VENV

PYTHON = PEERS_VENV / "bin" / "python"


@pytest.fixture(scope="module")
def proof(tmp_path_factory) -> dict:
    if not PYTHON.exists():
        message = f"{PYTHON} is missing: `bash .ci/setup` creates it (PEFT and adapters, from PyPI)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return prove(tmp_path_factory.mktemp("exchange"), PYTHON)


@pytest.mark.parametrize("name", [case.name for case in cases()])
def test_the_library_loads_the_export_and_computes_what_seqadapt_does(proof, name):
    result = proof["cases"][name]
    assert result["error"] is None, result["error"]
    assert result["max_abs_diff"] is not None and result["max_abs_diff"] <= TOLERANCE
    assert result["roundtrip_identical"] and result["library_saved_imports_identical"]


def test_every_family_and_library_and_head_type_is_proved(proof):
    names = set(proof["cases"])
    for library in ("peft", "adapters"):
        for family in ("bert", "llama", "roberta", "mistral"):
            assert any(name.startswith(f"{library}-{family}-") for name in names)
    assert {"peft-bert-lora-extractive_qa", "peft-llama-ia3-token_classification", "adapters-bert-parallel-classification",
            "adapters-llama-houlsby-classification", "adapters-llama-ia3_kv-extractive_qa"} <= names


@pytest.mark.parametrize("name", [case.name for case in refusals()])
def test_what_a_library_cannot_compute_exactly_is_refused_with_the_reason_and_the_way_out(proof, name):
    reason = proof["refused"][name]
    assert reason.startswith("cannot export") and len(reason.split(". ")) >= 2, reason
