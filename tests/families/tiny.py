"""Tiny random models of every supported family, saved with ``save_pretrained`` beside a tiny tokenizer.

Decoder families get a byte-level BPE tokenizer with an EOS token and no pad token (as GPT-2, Llama and Qwen2
ship); encoder-decoder families get one with ``<pad>`` and an EOS appended to every input, as T5 and BART do.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoConfig, PreTrainedTokenizerFast

from seqadapt.backbone import auto_class
from seqadapt.families import family_of
from tests.conftest import FILLER, TOY_TASKS, write_toy_task

_DECODER = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
            "intermediate_size": 64, "max_position_embeddings": 64}
_T5 = {"d_model": 32, "d_kv": 16, "num_layers": 2, "num_heads": 2, "d_ff": 64}
_BART = {"d_model": 32, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 2,
         "decoder_attention_heads": 2, "encoder_ffn_dim": 64, "decoder_ffn_dim": 64, "max_position_embeddings": 64}
CONFIGS = {
    "gpt2": {"n_embd": 32, "n_layer": 2, "n_head": 2, "n_positions": 64},
    "llama": _DECODER,
    "mistral": _DECODER,
    "qwen2": _DECODER,
    "gemma": {**_DECODER, "head_dim": 16},
    "phi": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
            "max_position_embeddings": 64},
    "phi3": _DECODER,
    "t5": _T5,
    "mt5": _T5,
    "bart": _BART,
    "mbart": _BART,
}
FAMILY_TYPES = sorted(CONFIGS)
DECODER_TYPES = [t for t in FAMILY_TYPES if family_of(t).architecture == "decoder"]


def corpus() -> list[str]:
    words = FILLER + [word for classes in TOY_TASKS.values() for keywords in classes.values() for word in keywords]
    return [" ".join(words[i:] + words[:i]) for i in range(len(words))]


def tiny_tokenizer(seq2seq: bool) -> PreTrainedTokenizerFast:
    """A byte-level BPE over the toy tasks' words; no pad token unless ``seq2seq``."""
    specials = ["<pad>", "</s>", "<unk>"] if seq2seq else ["<|endoftext|>"]
    bpe = Tokenizer(models.BPE(unk_token="<unk>" if seq2seq else None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(corpus(), trainer)
    if seq2seq:
        eos = bpe.token_to_id("</s>")
        bpe.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                           special_tokens=[("</s>", eos)])
        return PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", bos_token="<|endoftext|>")


def save_tiny_family(model_type: str, folder: Path, seed: int = 0) -> Path:
    """A tiny random ``model_type`` model and its tokenizer, written to ``folder`` by ``save_pretrained``."""
    seq2seq = family_of(model_type).architecture == "encoder_decoder"
    tokenizer = tiny_tokenizer(seq2seq)
    eos = tokenizer.eos_token_id
    ids = ({"pad_token_id": tokenizer.pad_token_id, "eos_token_id": eos, "bos_token_id": eos,
            "decoder_start_token_id": tokenizer.pad_token_id, "forced_eos_token_id": None} if seq2seq else
           {"pad_token_id": None, "eos_token_id": eos, "bos_token_id": eos})
    config = AutoConfig.for_model(model_type, vocab_size=len(tokenizer), **CONFIGS[model_type], **ids)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = auto_class(model_type).from_config(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_toy_text_task(task_dir: Path, name: str = "color_words") -> None:
    """A text-to-text twin of the toy ``colors`` task, on its files: the target is the colour a sentence names."""
    import yaml

    write_toy_task(task_dir, "colors")
    definition = {
        "name": name, "type": "text_to_text", "input_field": "sentence", "target_field": "label",
        "prompt": "{input} colour:", "max_target_length": 4,
        "source": {"kind": "local_files", "format": "csv", "files": {"train": "colors_train.csv", "test": "colors_test.csv"}},
    }
    (task_dir / f"{name}.yaml").write_text(yaml.safe_dump(definition), encoding="utf-8")
