"""Loads seqadapt's exported folders with the real PEFT and AdapterHub ``adapters``, runs them and saves them again
as their users save adapters: the peers' half of the exchange proof (``bench.exchange``).

Runs inside ``bench/.venv-peers`` (``adapters`` 1.3 pins transformers 4.57) as a plain script, importing only
torch, transformers, peft, adapters and safetensors (not seqadapt), so every output it writes was computed by
the libraries themselves from the files on disk:

    bench/.venv-peers/bin/python bench/exchange_peers.py cases.json outputs.safetensors
"""

from __future__ import annotations

import json
import sys
import warnings

import adapters
import peft
import torch
import transformers
from safetensors.torch import load_file, save_file


def load(case: dict) -> torch.nn.Module:
    """The backbone in ``case["class"]`` with the exported folder loaded as its users load it."""
    model_class = getattr(transformers, case["class"])
    extra = {"num_labels": case["num_labels"]} if case.get("num_labels") else {}
    if case["library"] == "peft":
        return peft.PeftModel.from_pretrained(model_class.from_pretrained(case["base"], **extra), case["folder"])
    if case["adapter_model"]:
        model = adapters.AutoAdapterModel.from_pretrained(case["base"])
        model.load_adapter(case["folder"], set_active=True, use_safetensors=True)
        return model
    model = model_class.from_pretrained(case["base"])
    adapters.init(model)
    model.set_active_adapters(model.load_adapter(case["folder"], use_safetensors=True))
    return model


def output(model: torch.nn.Module, case: dict, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """What seqadapt's side compares: logits, start and end logits stacked, hidden states or LM logits."""
    out = model(**inputs)
    if case["output"] == "spans":
        return torch.stack([out.start_logits, out.end_logits], dim=-1)
    if case["output"] == "hidden":
        return out.last_hidden_state
    return out.logits


def resave(model: torch.nn.Module, case: dict) -> None:
    """The library writes what it loaded as its users save adapters: the other direction of the proof."""
    if case["library"] == "peft":
        model.save_pretrained(case["resaved"])
    else:
        model.save_adapter(case["resaved"], "task", with_head=case["adapter_model"], use_safetensors=True)


def main(cases_path: str, out_path: str) -> None:
    cases = json.load(open(cases_path))
    inputs = load_file(cases["inputs"])
    outputs, errors = {}, {}
    for case in cases["cases"]:
        try:
            with warnings.catch_warnings(record=True) as caught, torch.no_grad():
                warnings.simplefilter("always")
                model = load(case).eval()
                outputs[case["name"]] = output(model, case, inputs).float().contiguous()
                resave(model, case)
            missing = [str(w.message)[:300] for w in caught if "missing" in str(w.message).lower()]
            if missing:
                errors[case["name"]] = f"loaded with warnings: {missing}"
        except Exception as err:  # noqa: BLE001 - each case's failure is reported, the others still run
            errors[case["name"]] = f"{type(err).__name__}: {err}"[:2000]
    save_file(outputs, out_path)
    versions = {"transformers": transformers.__version__, "peft": peft.__version__, "adapters": adapters.__version__,
                "torch": torch.__version__}
    json.dump({"errors": errors, "versions": versions}, open(out_path + ".json", "w"), indent=2)


if __name__ == "__main__":
    main(*sys.argv[1:3])
