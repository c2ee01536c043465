"""Proof that exported folders are what PEFT and AdapterHub ``adapters`` load: ``python -m bench.exchange``.

For each case (method x library x family x head), a tiny random backbone written with ``save_pretrained`` gets
one task whose adapter and head tensors are drawn at random (so nothing is an identity), seqadapt computes its
outputs on fixed inputs, the task is exported, and ``bench/exchange_peers.py`` loads the folder with the real
library in ``bench/.venv-peers`` and computes the same outputs; the largest absolute difference is reported.
Each folder is also imported back and its tensors compared byte for byte. The refusals (what a library cannot
compute exactly) are listed with their reasons. Writes ``bench/exchange/results.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig

from bench.common import write_results
from seqadapt.adapters import adapter_config
from seqadapt.backbone import auto_class
from seqadapt.data import TaskSpec
from seqadapt.exchange.errors import ExchangeError
from seqadapt.exchange.export import export_state
from seqadapt.exchange.folder import read_folder
from seqadapt.exchange.layout import HEADS
from seqadapt.exchange.task_state import TaskState, module_task_state
from seqadapt.model import SeqAdaptModule

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).parent / "exchange"
PEERS_SCRIPT = Path(__file__).parent / "exchange_peers.py"
TOLERANCE = 1e-5  # float32 rounding of the same sums taken in another order (or by another kernel)
_ENCODER = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
_DECODER = {**_ENCODER, "num_key_value_heads": 1, "max_position_embeddings": 64}
TINY = {"bert": _ENCODER, "llama": _DECODER, "roberta": _ENCODER, "mistral": _DECODER}
DECODERS = ("llama", "mistral")
LABELS = {"classification": ("a", "b", "c"), "token_classification": ("O", "B-X", "I-X", "B-Y"), "extractive_qa": ()}
SOURCE = {"kind": "local_files", "format": "csv", "files": {"train": "unused.csv"}}
METHODS = {"houlsby": {"bottleneck": 8}, "pfeiffer": {"bottleneck": 8, "placement": "pfeiffer"},
           "parallel": {"method": "parallel", "bottleneck": 8, "scaling": 4.0},
           "lora": {"method": "lora", "rank": 4, "alpha": 8.0, "targets": ["query", "value", "ffn"]},
           "lora_all": {"method": "lora", "rank": 4, "alpha": 8.0,
                        "targets": ["query", "key", "value", "attention", "ffn"]},
           "ia3": {"method": "ia3"}, "ia3_kv": {"method": "ia3", "targets": ["key", "value"]}}


@dataclass(frozen=True)
class Case:
    """One export: ``method`` (a key of :data:`METHODS`) on ``family`` to ``library``, for a task of ``kind``,
    with its head (``head``) or without."""

    library: str
    family: str
    method: str
    kind: str
    head: bool = True

    @property
    def name(self) -> str:
        return f"{self.library}-{self.family}-{self.method}-{self.kind}{'' if self.head else '-no_head'}"


def cases() -> list[Case]:
    """Every supported method of each library on an encoder and a decoder, with each head type it has."""
    found = []
    for family in ("bert", "llama"):
        for method in ("lora", "lora_all", "ia3"):
            found += [Case("peft", family, method, "classification", head=False),
                      Case("peft", family, method, "token_classification")]
        found += [Case("adapters", family, "houlsby", "classification"), Case("adapters", family, "pfeiffer", "classification", False),
                  Case("adapters", family, "lora", "token_classification"), Case("adapters", family, "ia3_kv", "extractive_qa")]
    found += [Case("peft", "bert", method, "extractive_qa") for method in ("lora", "ia3")]
    found += [Case("adapters", "roberta", "houlsby", "classification"), Case("peft", "roberta", "lora", "token_classification"),
              Case("adapters", "mistral", "lora", "token_classification"), Case("peft", "mistral", "lora_all", "classification", False)]
    return found + [Case("adapters", "bert", "parallel", "classification")]


def refusals() -> list[Case]:
    """Exports a library cannot compute exactly: each must be refused with its reason."""
    return [Case("peft", "bert", "houlsby", "classification"), Case("peft", "llama", "parallel", "classification"),
            Case("peft", "bert", "lora", "classification"), Case("peft", "llama", "lora", "regression"),
            Case("peft", "llama", "lora", "extractive_qa"),
            Case("adapters", "llama", "parallel", "classification"), Case("adapters", "bert", "ia3", "classification"),
            Case("adapters", "bert", "lora_all", "classification"), Case("adapters", "bert", "houlsby", "regression")]


@dataclass
class Workspace:
    """Where the backbones, exports and inputs of one proof live."""

    root: Path
    backbones: dict[str, Path] = field(default_factory=dict)

    def backbone(self, family: str) -> Path:
        if family not in self.backbones:
            config = AutoConfig.for_model(family, vocab_size=96, **TINY[family])
            with torch.random.fork_rng():
                torch.manual_seed(0)
                auto_class(family).from_config(config).save_pretrained(self.root / family)
            self.backbones[family] = self.root / family
        return self.backbones[family]


def pooling(case: Case) -> str:
    return "last" if case.family in DECODERS else "cls"


def task_module(case: Case, space: Workspace, seed: int = 0) -> SeqAdaptModule:
    """A module over ``case``'s saved backbone holding one task whose adapter and head tensors are random."""
    folder = space.backbone(case.family)
    backbone = auto_class(case.family).from_pretrained(folder).eval()
    module = SeqAdaptModule(backbone, adapter_config(METHODS[case.method]), pooling=pooling(case)).eval()
    spec = TaskSpec(name="task", source=SOURCE, labels=LABELS.get(case.kind, ()), type=case.kind)
    module.add_task(spec)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, tensor in module.tensors.of("task").items():
            if not key.startswith("selection."):
                noise = torch.randn(tensor.shape, generator=generator) * 0.2
                tensor.copy_(noise + (1.0 if key.endswith(".scale") else 0.0))
    return module


def seqadapt_output(module: SeqAdaptModule, case: Case, ids: torch.Tensor) -> torch.Tensor:
    """What the peer library's model returns for ``case``, computed by seqadapt: the head's outputs; without a
    head, the token states (encoders) or the language model's logits (decoders)."""
    mask = torch.ones_like(ids)
    with torch.no_grad(), module.evaluating(), module.routed_to("task"):
        if case.head:
            return module.kind("task").run(module, "task", ids, mask)
        if module.family.architecture == "decoder":
            return module.backbone(input_ids=ids, attention_mask=mask).logits
        return module.encode(ids, mask)


PEFT_CLASSES = {"FEATURE_EXTRACTION": "AutoModel", "CAUSAL_LM": "AutoModelForCausalLM",
                "TOKEN_CLS": "AutoModelForTokenClassification", "QUESTION_ANS": "AutoModelForQuestionAnswering"}


def how_to_load(case: Case, folder: Path, base: Path) -> dict[str, Any]:
    """How the peers' script loads an exported folder, read from the folder's own config as a user would."""
    config = json.loads((folder / "adapter_config.json").read_text())
    output = "spans" if case.kind == "extractive_qa" and case.head else "logits"
    if not case.head:
        output = "logits" if case.family in DECODERS else "hidden"
    if case.library == "peft":
        model_class = PEFT_CLASSES[config["task_type"]]
        labels = len(LABELS[case.kind]) if config["task_type"] == "TOKEN_CLS" else None
        return {"library": "peft", "class": model_class, "num_labels": labels, "adapter_model": False,
                "output": output, "base": str(base), "folder": str(folder)}
    return {"library": "adapters", "class": config["model_class"], "num_labels": None, "output": output,
            "adapter_model": (folder / "head_config.json").exists(), "base": str(base), "folder": str(folder)}


def resaved_identical(state: TaskState, folder: Path) -> bool:
    """Whether the folder the library wrote itself (``resave`` in the peers' script) imports to exactly the task's
    adapter tensors and, where the library holds the head, its head: seqadapt reads the library's own writing."""
    read = read_folder(folder, state.layout, state.spec, 2**30)
    back = read.imported.named("task")
    expected = {key: value for key, value in state.tensors.items() if not key.startswith(HEADS) or read.imported.head}
    return set(back) == set(expected) and all(torch.equal(back[key], value) for key, value in expected.items())


def roundtrip_identical(state: TaskState, folder: Path) -> bool:
    """Whether importing the folder gives back exactly the task's adapter and head tensors (bytes and dtypes)."""
    read = read_folder(folder, state.layout, state.spec, 2**30)
    back = read.imported.named("task")
    return set(back) == set(state.tensors) and all(
        back[key].dtype == value.dtype and back[key].shape == value.shape and torch.equal(back[key], value)
        for key, value in state.tensors.items())


def export_case(case: Case, space: Workspace, ids: torch.Tensor) -> dict[str, Any]:
    """Export ``case`` and note what the peers must reproduce; the expected output goes to ``expected``."""
    module = task_module(case, space)
    state = module_task_state(module, "task", {"name": case.family, "sha256": "", "location": str(space.backbone(case.family))})
    folder = space.root / "exports" / case.name
    report = export_state(state, case.library, folder, head=case.head)
    return {"name": case.name, **how_to_load(case, folder, space.backbone(case.family)),
            "resaved": str(space.root / "resaved" / case.name), "state": state,
            "expected": seqadapt_output(module, case, ids), "files": report.files, "head_in": report.head,
            "roundtrip_identical": roundtrip_identical(state, folder)}


def refusal(case: Case, space: Workspace) -> str:
    """The reason ``case``'s export is refused (an empty string would mean it was written: a failure)."""
    module = task_module(case, space)
    state = module_task_state(module, "task", {"name": case.family, "sha256": "", "location": ""})
    try:
        export_state(state, case.library, space.root / "refused" / case.name, head=case.head)
    except ExchangeError as err:
        return str(err)
    return ""


def prove(root: Path, python: Path) -> dict[str, Any]:
    """Every case exported, loaded by the peers and compared; every refusal's reason."""
    space = Workspace(root)
    ids = torch.randint(3, 96, (2, 7), generator=torch.Generator().manual_seed(0))
    entries = [export_case(case, space, ids) for case in cases()]
    save_file({"input_ids": ids, "attention_mask": torch.ones_like(ids)}, str(root / "inputs.safetensors"))
    names = [entry["name"] for entry in entries]
    expected = {entry["name"]: entry.pop("expected") for entry in entries}
    states = {entry["name"]: entry.pop("state") for entry in entries}
    spec = {"inputs": str(root / "inputs.safetensors"), "cases": entries}
    (root / "cases.json").write_text(json.dumps(spec, indent=2))
    subprocess.run([str(python), str(PEERS_SCRIPT), str(root / "cases.json"), str(root / "outputs.safetensors")],
                   check=True, cwd=ROOT, timeout=1200)
    got = load_file(str(root / "outputs.safetensors"))
    peers = json.loads((root / "outputs.safetensors.json").read_text())
    results = {}
    for entry, name in zip(entries, names, strict=True):
        diff = (got[name] - expected[name]).abs().max().item() if name in got and got[name].shape == expected[name].shape else None
        results[name] = {"max_abs_diff": diff, "error": peers["errors"].get(name), "files": entry["files"],
                         "head": entry["head_in"], "roundtrip_identical": entry["roundtrip_identical"],
                         "library_saved_imports_identical": name in got and resaved_identical(states[name], Path(entry["resaved"]))}
    return {"versions": peers["versions"], "cases": results,
            "refused": {case.name: refusal(case, space) for case in refusals()}}


def markdown(results: dict[str, Any]) -> str:
    """The proof as tables: each case's largest output difference and sizes, then each refusal's reason."""
    versions = ", ".join(f"{name} {version}" for name, version in results["versions"].items())
    lines = [f"Exported by seqadapt, loaded and run by the real libraries ({versions}); tiny random backbones "
             "written with save_pretrained, random adapter and head tensors, 2 x 7 tokens.", "",
             "| case (library-family-method-kind) | loaded | largest abs. output difference | import gives back "
             "identical tensors | the library's own save imports identical | adapter file (bytes) | head |",
             "|---|---|---|---|---|---|---|"]
    for name, case in results["cases"].items():
        weights = next(size for file, size in case["files"].items() if file in ("adapter_model.safetensors", "adapter.safetensors"))
        diff = "-" if case["max_abs_diff"] is None else f"{case['max_abs_diff']:.1e}"
        lines.append(f"| {name} | {'no: ' + case['error'] if case['error'] else 'yes'} | {diff} | "
                     f"{'yes' if case['roundtrip_identical'] else 'NO'} | "
                     f"{'yes' if case['library_saved_imports_identical'] else 'NO'} | {weights:,} | {case['head']} |")
    lines += ["", "| refused export | reason |", "|---|---|"]
    lines += [f"| {name} | {reason or 'NOT REFUSED'} |" for name, reason in results["refused"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    from bench.run import peers_python  # creates bench/.venv-peers on first use (needs PyPI)

    with tempfile.TemporaryDirectory() as root:
        results = prove(Path(root), peers_python())
    write_results(args.out, results, markdown(results))


if __name__ == "__main__":
    main()
