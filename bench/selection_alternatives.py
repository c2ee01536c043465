"""What else was tried for task-ID-free selection, scored on the same held-out rows as ``bench.tune_selection``.

    .venv/bin/python -m bench.selection_alternatives          # the default, mixed_domains and kinds streams

Each alternative reads the bare backbone once per input, as the shipped
statistics selectors do, and needs only what each task could store when its
stage ends (sums over its training rows, or the rows' features), so any of
them would keep earlier tasks provably unchanged. Each is scored by task-ID
accuracy (mean over tasks, every task a candidate for every row) on the
held-out training-pool rows of ``bench.tune_selection`` on several streams, so
that a change is judged beside the shipped ``mahalanobis`` on more than one
stream and never on test data. Writes ``bench/selection_tuning/alternatives.{md,json}``.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn import functional as F
from transformers import PreTrainedTokenizerBase

from bench.tune_selection import OUT, fit_tasks, held_out_tasks, scored_rows, task_id_accuracy
from seqadapt.backbone import BackboneConfig, load_backbone
from seqadapt.build import build_module, container
from seqadapt.data import make_loader
from seqadapt.data.splits import TaskSplits
from seqadapt.families import token_states
from seqadapt.heads import pool
from seqadapt.model import SeqAdaptModule
from seqadapt.selection.combine import gaussian_model, mahalanobis_scores, pooled_covariance, shrink
from seqadapt.selection.statistics import TaskStatistics

STREAMS = {"default": [], "mixed_domains": ["tasks=mixed_domains"], "kinds": ["experiment=kinds"]}
SHRINKAGE = 0.1  # the shipped default, for every Gaussian alternative


@dataclass
class Rows:
    """One split of one task: per pooling ('mean', 'max', 'first'), [N, hidden states, d] unit-length features;
    each row's token ids (special tokens dropped); the class its statistics count it under."""

    pooled: dict[str, torch.Tensor]
    tokens: list[torch.Tensor]
    classes: torch.Tensor

    def features(self, layers: list[int], pooling: str = "mean") -> torch.Tensor:
        return self.pooled[pooling][:, layers].flatten(1)


@torch.inference_mode()
def read_rows(module: SeqAdaptModule, tokenizer: PreTrainedTokenizerBase, task: TaskSplits, split: str, max_length: int) -> Rows:
    """Every row of ``task``'s ``split`` through the bare backbone (no adapter runs), pooled three ways."""
    loader = make_loader((task.spec, getattr(task, split)), tokenizer, max_length=max_length, batch_size=64)
    special, kind = torch.tensor(tokenizer.all_special_ids), module.kind(task.spec.name)
    pooled, tokens, classes = {"mean": [], "max": [], "first": []}, [], []
    with module.router.route(None):
        for batch in loader:
            mask = batch["attention_mask"]
            states = token_states(module.backbone, module.family, batch["input_ids"], mask, batch.get("token_type_ids"), True).hidden_states
            padded = mask.unsqueeze(-1) == 0
            for name, reduce in (("mean", lambda h: pool(h, mask, "mean")), ("first", lambda h: h[:, 0]),
                                 ("max", lambda h: h.masked_fill(padded, float("-inf")).amax(dim=1))):
                pooled[name].append(torch.stack([F.normalize(reduce(h).float(), dim=-1) for h in states], dim=1))
            tokens += [ids[(m > 0) & ~torch.isin(ids, special)] for ids, m in zip(batch["input_ids"], mask)]
            classes.append(kind.prototype_labels(batch["labels"]))
    return Rows({k: torch.cat(v) for k, v in pooled.items()}, tokens, torch.cat(classes))


@dataclass
class Stream:
    """A stream's held-out problem: training and scored rows per task, class counts, layer indices, vocabulary."""

    name: str
    train: list[Rows]
    scored: list[Rows]
    classes: list[int]
    default_layers: list[int]
    states: int
    vocabulary: int
    note: str


Scorer = Callable[[Stream], list[torch.Tensor]]  # per task t: [rows of t, tasks] scores


def fitted(stream: Stream, features: Callable[[Rows], torch.Tensor]) -> list[TaskStatistics]:
    """Each task's shipped statistics over ``features`` of its training rows."""
    return fit_tasks([features(rows) for rows in stream.train], [rows.classes for rows in stream.train], stream.classes)


def shipped(features: Callable[[Rows], torch.Tensor], shrinkage: float = SHRINKAGE) -> Scorer:
    """The shipped ``mahalanobis`` selector (shared shrunk covariance, best class per task) over ``features``."""
    def scores(stream: Stream) -> list[torch.Tensor]:
        model = gaussian_model(fitted(stream, features), shrinkage)
        return [mahalanobis_scores(features(rows), model, len(stream.train)) for rows in stream.scored]
    return scores


def precisions(stats: list[TaskStatistics], blend: float, shrinkage: float = SHRINKAGE) -> list[tuple[torch.Tensor, float]]:
    """Per task: the inverse and log-determinant of blend x (the covariance shared by all tasks' classes) +
    (1 - blend) x (the task's own within-class covariance), shrunk as the shipped selector shrinks it."""
    shared, out = pooled_covariance(stats), []
    for s in stats:
        cholesky = torch.linalg.cholesky(shrink(blend * shared + (1 - blend) * pooled_covariance([s]), shrinkage))
        out.append((torch.cholesky_inverse(cholesky), 2 * float(torch.log(cholesky.diagonal()).sum())))
    return out


def class_log_likelihoods(stats: list[TaskStatistics], x: torch.Tensor, blend: float) -> list[torch.Tensor]:
    """Per task: [N, its seen classes] Gaussian log-likelihoods of ``x`` (up to a constant shared by all)."""
    x, out = x.double(), []
    for s, (precision, log_det) in zip(stats, precisions(stats, blend)):
        means = s.centroids.double()[s.seen]
        distance = ((x @ precision) * x).sum(1, keepdim=True) - 2 * x @ precision @ means.T + ((means @ precision) * means).sum(1)
        out.append(-0.5 * (distance + log_det))
    return out


def gaussian(blend: float = 1.0, mixture: bool = False, layer_blocks: bool = False) -> Scorer:
    """Class Gaussians over the default layers' mean-pooled features: ``blend`` < 1 mixes each task's own
    covariance in (0: each task its own, as QDA per task); ``mixture`` scores a task by the log of its classes'
    likelihoods weighted by their share of its rows rather than by its best class; ``layer_blocks`` gives every
    hidden state its own covariance (block-diagonal, all hidden states) and adds their log-likelihoods."""
    def scores(stream: Stream) -> list[torch.Tensor]:
        groups = [[layer] for layer in range(stream.states)] if layer_blocks else [stream.default_layers]
        fits = [fitted(stream, lambda rows, g=g: rows.features(g)) for g in groups]
        priors = [torch.log(s.counts[s.seen].double() / s.counts.sum()) for s in fits[0]]
        out = []
        for rows in stream.scored:
            per_task = [sum(parts) for parts in zip(*(class_log_likelihoods(st, rows.features(g), blend) for g, st in zip(groups, fits)))]
            out.append(torch.stack([torch.logsumexp(ll + p, 1) if mixture else ll.amax(1) for ll, p in zip(per_task, priors)], 1))
        return out
    return scores


def random_fourier(dim: int, width: float, seed: int = 0) -> Scorer:
    """Kernel LDA: the shipped selector over random Fourier features cos(W x + b) of the default features,
    W ~ N(0, 1 / (width x median distance)^2), an RBF kernel of that width (Momeni et al.'s KLDA)."""
    def scores(stream: Stream) -> list[torch.Tensor]:
        sample = torch.cat([rows.features(stream.default_layers)[:200] for rows in stream.train])
        generator = torch.Generator().manual_seed(seed)
        w = torch.randn(sample.shape[1], dim, generator=generator) / (width * float(torch.cdist(sample, sample).median()))
        b = 2 * math.pi * torch.rand(dim, generator=generator)
        return shipped(lambda rows: math.sqrt(2 / dim) * torch.cos(rows.features(stream.default_layers) @ w + b))(stream)
    return scores


def nearest_neighbours(k: int) -> Scorer:
    """Cosine similarity to each task's k-th nearest training row (the task stores its rows' features)."""
    def scores(stream: Stream) -> list[torch.Tensor]:
        train = [F.normalize(rows.features(stream.default_layers), dim=-1) for rows in stream.train]
        return [torch.stack([(F.normalize(rows.features(stream.default_layers), dim=-1) @ t.T).topk(min(k, len(t)), dim=1).values[:, -1]
                             for t in train], 1) for rows in stream.scored]
    return scores


def unigram_scores(stream: Stream, smoothing: float) -> list[torch.Tensor]:
    """Log-likelihood of each row's tokens under each task's add-``smoothing`` unigram model of its training rows
    (the task stores one count per vocabulary entry)."""
    counts = torch.stack([torch.bincount(torch.cat(rows.tokens), minlength=stream.vocabulary).double() for rows in stream.train])
    log_p = torch.log((counts + smoothing) / (counts.sum(1, keepdim=True) + smoothing * stream.vocabulary))
    return [torch.stack([log_p[:, ids].sum(1) for ids in rows.tokens]) for rows in stream.scored]


def with_unigram(weight: float, smoothing: float = 0.1) -> Scorer:
    """The shipped selector's score plus ``weight`` x the unigram log-likelihood (0: the unigram model alone)."""
    def scores(stream: Stream) -> list[torch.Tensor]:
        words = unigram_scores(stream, smoothing)
        if weight == 0:
            return words
        return [g + weight * u for g, u in zip(shipped(lambda rows: rows.features(stream.default_layers))(stream), words)]
    return scores


def gaussian_bytes(d: int, k: int, blocks: int = 1) -> int:
    """float32 bytes of k counts, k means of d numbers and ``blocks`` symmetric scatter blocks covering d, each
    stored as its upper triangle as seqadapt stores them."""
    m = d // blocks
    return 4 * (k + k * d + blocks * m * (m + 1) // 2)


def alternatives(stream: Stream) -> dict[str, tuple[Scorer, int]]:
    """Name -> (scorer, float32 bytes the stream's first task would store for it)."""
    layers, every, d = stream.default_layers, list(range(stream.states)), stream.train[0].pooled["mean"].shape[2]
    k, n, unigram = stream.classes[0], len(stream.train[0].classes), 4 * stream.vocabulary
    default = gaussian_bytes(d * len(layers), k)
    pooled = lambda pooling: lambda rows: rows.features(layers, pooling)  # noqa: E731
    return {
        "shipped `mahalanobis`: mean pooling, default layers, a = 0.1": (shipped(pooled("mean")), default),
        "all hidden states, a = 0.03": (shipped(lambda rows: rows.features(every), 0.03), gaussian_bytes(d * len(every), k)),
        "a task scored by its class mixture (not its best class)": (gaussian(mixture=True), default),
        "each task's own covariance, blended half with the shared one": (gaussian(blend=0.5), default),
        "each task's own covariance (QDA per task)": (gaussian(blend=0.0), default),
        "one covariance per hidden state (block-diagonal), all hidden states": (
            gaussian(layer_blocks=True), gaussian_bytes(d * len(every), k, len(every))),
        "kernel LDA, 2,048 random Fourier features, width 1 x median": (random_fourier(2048, 1.0), gaussian_bytes(2048, k)),
        "kernel LDA, 2,048 random Fourier features, width 2 x median": (random_fourier(2048, 2.0), gaussian_bytes(2048, k)),
        "5th nearest training row, cosine": (nearest_neighbours(5), 4 * n * d * len(layers)),
        "unigram token model alone (add-0.1)": (with_unigram(0.0), unigram),
        "shipped + 0.1 x unigram log-likelihood": (with_unigram(0.1), default + unigram),
        "shipped + 1 x unigram log-likelihood": (with_unigram(1.0), default + unigram),
        "max pooling": (shipped(pooled("max")), default),
        "first-token pooling": (shipped(pooled("first")), default),
        "mean and first-token pooling side by side": (
            shipped(lambda rows: torch.cat([rows.features(layers), rows.features(layers, "first")], 1)),
            gaussian_bytes(2 * d * len(layers), k)),
    }


def read_stream(name: str, overrides: list[str], held_out: int) -> Stream:
    cfg, tasks, kept_validation = held_out_tasks(overrides, held_out)
    backbone = load_backbone(BackboneConfig(**container(cfg.backbone)))
    module = build_module(cfg, backbone).eval()
    for task in tasks:
        module.add_task(task.spec, task.train)
    states = backbone.model.config.num_hidden_layers + 1
    read = lambda task, split: read_rows(module, backbone.tokenizer, task, split, cfg.data.max_length)  # noqa: E731
    note = scored_rows(held_out, kept_validation)
    return Stream(name, [read(t, "train") for t in tasks], [read(t, "val") for t in tasks],
                  [module.kind(t.spec.name).prototype_classes(t.spec) for t in tasks],
                  [layer % states for layer in module.selection.layers], states, len(backbone.tokenizer), note)


def score_stream(stream: Stream) -> dict[str, dict[str, float]]:
    return {name: {"task_id": task_id_accuracy(scorer(stream)), "bytes_per_task": size}
            for name, (scorer, size) in alternatives(stream).items()}


def to_markdown(results: dict[str, dict], notes: dict[str, str]) -> str:
    streams = list(results)
    names = list(results[streams[0]])
    lines = ["Task-ID accuracy (mean over tasks, every task a candidate) of each alternative; bytes: what the first "
             "task of the first stream would store.", ""]
    lines += [f"- `{s}`: {notes[s]}" for s in streams] + [""]
    lines += ["| alternative | " + " | ".join(streams) + " | mean | bytes per task |", "|---" * (len(streams) + 3) + "|"]
    for name in names:
        accuracies = [results[s][name]["task_id"] for s in streams]
        lines.append(f"| {name} | " + " | ".join(f"{a:.4f}" for a in accuracies)
                     + f" | {sum(accuracies) / len(accuracies):.4f} | {results[streams[0]][name]['bytes_per_task']:,} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """``[--held-out N] [override ...]``: the overrides apply to every stream of :data:`STREAMS`."""
    overrides = list(sys.argv[1:] if argv is None else argv)
    held_out = 2000
    if overrides[:1] == ["--held-out"]:
        held_out, overrides = int(overrides[1]), overrides[2:]
    results, notes = {}, {}
    for name, preset in STREAMS.items():
        stream = read_stream(name, [*preset, *overrides], held_out)
        results[name], notes[name] = score_stream(stream), f"{stream.note}, tasks {[len(r.classes) for r in stream.scored]} rows scored"
        print(f"{name}: done", flush=True)
    OUT.mkdir(exist_ok=True)
    (OUT / "alternatives.json").write_text(json.dumps({"held_out": held_out, "overrides": overrides, "notes": notes, "results": results}, indent=2) + "\n")
    (OUT / "alternatives.md").write_text(to_markdown(results, notes))
    print(to_markdown(results, notes))


if __name__ == "__main__":
    main()
