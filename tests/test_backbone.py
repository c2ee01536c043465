"""The backbone's position limit, checked against what each model's forward pass actually accepts."""

import pytest
import torch
from transformers import AutoConfig, AutoModel

from seqadapt.backbone import BackboneConfig, load_backbone, max_positions
from tests.conftest import TINY, TINY_DISTILBERT

TOO_LONG = "out of range|out of bounds|size of (the )?tensor"  # a lookup past the position table, or too short a slice


def ids(length: int) -> torch.Tensor:
    return torch.full((1, length), 5)


@pytest.mark.parametrize("model_type", ["bert", "roberta", "xlm-roberta", "camembert", "electra", "distilbert"])
def test_an_encoders_limit_is_the_longest_input_its_learned_positions_take(model_type):
    size = TINY_DISTILBERT if model_type == "distilbert" else TINY
    model = AutoModel.from_config(AutoConfig.for_model(model_type, vocab_size=50, max_position_embeddings=40, **size))
    limit = max_positions(model.eval())
    with torch.no_grad():
        model(input_ids=ids(limit))
        with pytest.raises((IndexError, RuntimeError), match=TOO_LONG):
            model(input_ids=ids(limit + 1))
    # RoBERTa numbers its positions from the padding index (1) + 1, so two of its 40 rows are never used
    assert limit == (38 if model_type in ("roberta", "xlm-roberta", "camembert") else 40)


@pytest.mark.parametrize("model_type", ["gpt2", "bart"])
def test_a_learned_position_generators_limit_is_the_longest_input_it_takes(family_dirs, model_type):
    model = load_backbone(BackboneConfig(name=model_type, path=str(family_dirs[model_type]))).model
    limit = max_positions(model)
    assert limit == 64  # tests/families/tiny.py builds them with 64 positions
    with torch.no_grad():
        model(input_ids=ids(limit))
        with pytest.raises((IndexError, RuntimeError), match=TOO_LONG):
            model(input_ids=ids(limit + 1))


def test_rotary_models_are_held_to_their_trained_length_and_t5_has_no_limit(family_dirs):
    llama = load_backbone(BackboneConfig(name="llama", path=str(family_dirs["llama"]))).model
    assert max_positions(llama) == 64  # its max_position_embeddings: rotary positions run on, untrained
    t5 = load_backbone(BackboneConfig(name="t5", path=str(family_dirs["t5"]))).model
    assert max_positions(t5) is None
    with torch.no_grad():
        t5(input_ids=ids(300), decoder_input_ids=ids(1))  # relative position buckets: any length
