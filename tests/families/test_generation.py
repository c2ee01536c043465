"""Teacher forcing, greedy generation and input loss on every language-model family: a padded batch gives what
each row gives alone, and what Hugging Face's own passes give."""

from __future__ import annotations

import pytest
import torch

from seqadapt.backbone import BackboneConfig, load_backbone
from seqadapt.families import model_family
from seqadapt.families.generation import IGNORE, decoder_start, greedy, input_nll, target_logits, to_left_padding
from tests.families.tiny import DECODER_TYPES, FAMILY_TYPES

PROMPTS = ["the red house", "a big old river and the city"]
TARGETS = [" red", " river city"]


def setup(family_dirs, model_type):
    backbone = load_backbone(BackboneConfig(name=model_type, path=str(family_dirs[model_type])))
    tok = backbone.tokenizer
    labels = [tok(t, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for t in TARGETS]
    width = max(map(len, labels))
    padded = torch.tensor([row + [IGNORE] * (width - len(row)) for row in labels])
    return backbone.model, model_family(backbone.model), tok, labels, padded


@pytest.mark.parametrize("model_type", FAMILY_TYPES)
def test_teacher_forced_logits_of_a_padded_batch_are_each_rows_own(family_dirs, model_type):
    model, family, tok, labels, padded = setup(family_dirs, model_type)
    batch = tok(PROMPTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        logits = target_logits(model, family, batch["input_ids"], batch["attention_mask"], padded)
        for i, prompt in enumerate(PROMPTS):
            ids = tok(prompt, return_tensors="pt")["input_ids"]
            target = torch.tensor([labels[i]])
            if family.architecture == "decoder":  # the target after the prompt, read causally
                alone = model(input_ids=torch.cat([ids, target], 1)).logits[0, ids.shape[1] - 1:-1]
            else:  # the target shifted right behind the decoder's start token
                decoder_ids = torch.cat([torch.tensor([[decoder_start(model)]]), target[:, :-1]], 1)
                alone = model(input_ids=ids, decoder_input_ids=decoder_ids).logits[0]
            assert torch.allclose(logits[i, :len(labels[i])], alone, atol=1e-5)


@pytest.mark.parametrize("model_type", FAMILY_TYPES)
def test_greedy_generation_of_a_padded_batch_is_each_rows_own(family_dirs, model_type):
    model, family, tok, _, _ = setup(family_dirs, model_type)
    batch = tok(PROMPTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        ids, nll = greedy(model, family, batch["input_ids"], batch["attention_mask"], 5, tok.eos_token_id, tok.pad_token_id)
        assert ids.shape == (2, 5) and nll.shape == (2,) and bool((nll > 0).all())
        for i, prompt in enumerate(PROMPTS):
            alone = tok(prompt, return_tensors="pt")
            row, row_nll = greedy(model, family, alone["input_ids"], alone["attention_mask"], 5, tok.eos_token_id,
                                  tok.pad_token_id)
            assert ids[i].tolist() == row[0].tolist()
            assert torch.allclose(nll[i], row_nll[0], atol=1e-5)


def test_generation_stops_at_eos_and_marks_what_follows(family_dirs):
    model, family, tok, _, _ = setup(family_dirs, "gpt2")
    batch = tok(PROMPTS[:1], return_tensors="pt")
    with torch.inference_mode():
        first, _ = greedy(model, family, batch["input_ids"], batch["attention_mask"], 3, tok.eos_token_id, tok.pad_token_id)
        # make the first generated token EOS: the row ends there, and nothing after it counts
        eos_first, _ = greedy(model, family, batch["input_ids"], batch["attention_mask"], 3, int(first[0, 0]),
                              tok.pad_token_id)
    assert eos_first[0].tolist() == [int(first[0, 0]), -1, -1]


def test_left_padding_keeps_each_rows_tokens_in_order():
    ids = torch.tensor([[5, 6, 0, 0], [7, 8, 9, 1]])
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    left, left_mask = to_left_padding(ids, mask, pad_id=3)
    assert left.tolist() == [[3, 3, 5, 6], [7, 8, 9, 1]] and left_mask.tolist() == [[0, 0, 1, 1], [1, 1, 1, 1]]


@pytest.mark.parametrize("model_type", DECODER_TYPES)
def test_input_loss_is_the_language_models_own_per_row(family_dirs, model_type):
    model, family, tok, _, _ = setup(family_dirs, model_type)
    tok.padding_side = "left"
    batch = tok(PROMPTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        nll = input_nll(model, family, batch["input_ids"], batch["attention_mask"])
        for i, prompt in enumerate(PROMPTS):
            ids = tok(prompt, return_tensors="pt")["input_ids"]
            assert torch.allclose(nll[i], model(input_ids=ids, labels=ids).loss, atol=1e-5)


def test_input_loss_needs_a_decoder(family_dirs):
    model, family, tok, _, _ = setup(family_dirs, "t5")
    batch = tok(PROMPTS, padding=True, return_tensors="pt")
    with pytest.raises(ValueError, match="needs a decoder-only language model.*encoder-decoder"):
        input_nll(model, family, batch["input_ids"], batch["attention_mask"])
