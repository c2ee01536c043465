"""A GGUF backbone loads without transformers' de-quantisation bar unless third-party bars are on (seqadapt -v)."""

from transformers import modeling_gguf_pytorch_utils as gguf_utils
from transformers.utils import logging as transformers_logging

from seqadapt.backbone import gguf_progress_as_configured


def test_the_gguf_loader_s_bar_follows_transformers_progress_bar_switch(capfd):
    was_on = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        with gguf_progress_as_configured():
            list(gguf_utils.tqdm(range(3), desc="Converting and de-quantizing GGUF tensors..."))  # as the loader calls it
        assert "de-quantizing" not in capfd.readouterr().err
        transformers_logging.enable_progress_bar()
        with gguf_progress_as_configured():
            list(gguf_utils.tqdm(range(3), desc="Converting and de-quantizing GGUF tensors..."))
        assert "de-quantizing" in capfd.readouterr().err  # seqadapt -v shows it, as every other bar
    finally:
        (transformers_logging.enable_progress_bar if was_on else transformers_logging.disable_progress_bar)()
