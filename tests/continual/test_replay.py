"""Experience replay: the memory holds k training rows per task, chosen as a reservoir chooses (each of n rows
kept with probability k / n, Vitter's algorithm R), and a replayed batch's loss is the mean over all its rows."""

import json
from collections import Counter

import pytest
import torch
from torch.nn import functional as F

from seqadapt.continual.memory import RowMemory, reservoir
from seqadapt.continual.replay import Replay, ReplayConfig
from seqadapt.stream import LoaderConfig
from seqadapt.stream.loaders import StreamLoaders
from tests.continual.units import one_task_module, splits


def test_the_reservoir_keeps_k_rows_each_with_probability_k_over_n():
    n, k, draws = 20, 5, 4000
    counts = Counter(index for seed in range(draws) for index in reservoir(n, k, seed))
    assert all(len(reservoir(n, k, seed)) == k == len(set(reservoir(n, k, seed))) for seed in range(50))
    expected = draws * k / n  # 1000 per row; binomial sd = sqrt(4000 * 0.25 * 0.75) ~ 27
    assert set(counts) == set(range(n)) and all(abs(c - expected) < 5 * 27.4 for c in counts.values())
    assert reservoir(3, 5, seed=0) == [0, 1, 2]  # fewer rows than k: all of them


def test_the_memory_holds_k_real_training_rows_per_task_and_saves_them_as_json(tokenizer, tmp_path):
    loaders = StreamLoaders(tokenizer, LoaderConfig(max_length=12))
    memory = RowMemory(rows_per_task=4)
    for name, seed in (("a", 0), ("b", 1)):
        memory.add(splits(name, 30, seed=seed), loaders, seed=7)
    assert {task: len(rows) for task, rows in memory.rows.items()} == {"a": 4, "b": 4}
    train_a = splits("a", 30).train.to_list()
    assert all(row in train_a for row in memory.rows["a"])
    saved = json.loads(memory.save(tmp_path).read_text())
    assert saved == {"rows_per_task": 4, "rows": memory.rows}
    assert memory.task_bytes("a") == len(json.dumps(memory.rows["a"], ensure_ascii=False).encode())


def test_a_replayed_batch_loss_is_the_mean_over_new_and_replayed_rows_each_through_its_own_head(tokenizer):
    module = one_task_module("replay", tasks=("a", "b"))  # a learned, b training
    loaders = StreamLoaders(tokenizer, LoaderConfig(max_length=12, batch_size=4, eval_batch_size=4))
    plugin = Replay(ReplayConfig(rows_per_task=6, batch_size=3))
    plugin.memory.add(splits("a", 20), loaders, seed=0)
    plugin.before_stage(module, [splits("b", 8)], loaders, seed=5)
    module.eval()
    batch = next(iter(loaders.unshuffled_train(splits("b", 8, seed=3))))
    new_loss = F.cross_entropy(module(batch["input_ids"], batch["attention_mask"]), batch["labels"])
    module.log = lambda *args, **kwargs: None  # outside a Trainer
    combined = plugin.training_loss(module, batch, new_loss)

    generator = torch.Generator().manual_seed(5)  # the same draw, by hand: three rows of a's memory
    picked = [plugin.memory.rows["a"][i] for i in torch.randint(6, (3,), generator=generator).tolist()]
    encoded = tokenizer([r["text"] for r in picked], padding=True, truncation=True, max_length=12, return_tensors="pt")
    with module.routed_to("a"):
        replay_logits = module(encoded["input_ids"], encoded["attention_mask"], encoded.get("token_type_ids"))
    everything = torch.cat([F.cross_entropy(module(batch["input_ids"], batch["attention_mask"]), batch["labels"],
                                            reduction="none"),
                            F.cross_entropy(replay_logits, torch.tensor([r["label"] for r in picked]), reduction="none")])
    assert float(combined) == pytest.approx(float(everything.mean()), rel=1e-5)
