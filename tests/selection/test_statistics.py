"""A task's selection statistics: exact sums, only of seen classes, buffers that belong to the task."""

import hashlib

import pytest
import torch

from seqadapt.backbone import tensors_sha256
from seqadapt.selection import TaskStatistics
from seqadapt.selection.statistics import packed, packed_statistics, unpacked


def test_fit_stores_class_means_counts_and_within_class_scatter():
    stats = TaskStatistics(hidden_size=2, num_classes=3, projection_dim=0)
    features = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    stats.fit(features, torch.tensor([0, 0, 2]), None)
    assert torch.equal(stats.centroids, torch.tensor([[2.0, 0.0], [0.0, 0.0], [0.0, 2.0]]))
    assert torch.equal(stats.counts, torch.tensor([2.0, 0.0, 1.0]))
    # class 0: deviations (-1, 0) and (1, 0); class 2: none
    assert torch.equal(unpacked(stats.scatter), torch.tensor([[2.0, 0.0], [0.0, 0.0]]))
    assert torch.equal(stats.scatter, torch.tensor([2.0, 0.0, 0.0]))  # stored: the upper triangle, row by row


def test_fit_stores_ranpac_gram_and_targets_of_the_projected_features():
    stats = TaskStatistics(hidden_size=2, num_classes=2, projection_dim=3)
    features = torch.randn(5, 2)
    projected = torch.rand(5, 3)
    labels = torch.tensor([0, 1, 1, 0, 1])
    stats.fit(features, labels, projected)
    assert torch.allclose(unpacked(stats.gram), projected.T @ projected, atol=1e-6)
    one_hot = torch.nn.functional.one_hot(labels, 2).float()
    assert torch.allclose(stats.ridge_targets, projected.T @ one_hot, atol=1e-6)


def test_similarity_is_the_nearest_seen_centroid_and_skips_unseen_classes():
    stats = TaskStatistics(hidden_size=2, num_classes=3, projection_dim=0)
    stats.fit(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 2]), None)
    # class 1 was never seen: its zero centroid, cosine 0 to everything, must not count as a match. The last
    # row points away from both seen centroids (cosine -1/sqrt(2) to each): 0 would be the unseen class's score
    similarity = stats.similarity(torch.tensor([[5.0, 0.0], [1.0, 1.0], [-1.0, 0.0], [-1.0, -1.0]]))
    assert torch.allclose(similarity, torch.tensor([1.0, 2 ** -0.5, 0.0, -(2 ** -0.5)]), atol=1e-6)


def test_unfitted_statistics_and_empty_splits_are_refused():
    stats = TaskStatistics(hidden_size=2, num_classes=2, projection_dim=0)
    with pytest.raises(RuntimeError, match="never computed"):
        stats.similarity(torch.ones(1, 2))
    with pytest.raises(ValueError, match="training split is empty"):
        stats.fit(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), None)


def test_statistics_are_buffers_not_parameters():
    stats = TaskStatistics(hidden_size=4, num_classes=2, projection_dim=8)
    assert list(stats.parameters()) == []
    assert {name: tuple(b.shape) for name, b in stats.named_buffers()} == {
        "counts": (2,), "centroids": (2, 4), "scatter": (10,), "gram": (36,), "ridge_targets": (8, 2), "temperature": (),
    }
    assert float(stats.temperature) == 1.0


def test_symmetric_sums_are_stored_as_half_of_the_matrix_and_given_back_whole():
    stats = TaskStatistics(hidden_size=1152, num_classes=4, projection_dim=0)  # MiniLM's 3 x 384 features
    assert stats.scatter.numel() * 4 == 1152 * 1153 // 2 * 4 == 2_656_512  # bytes: 2.66 MB, was 1152^2 * 4 = 5.3 MB
    matrix = torch.randn(5, 5, dtype=torch.float64)
    symmetric = matrix + matrix.T
    upper = torch.triu(torch.ones(5, 5, dtype=torch.bool))  # boolean indexing reads row by row
    assert torch.equal(packed(symmetric), symmetric[upper]) and torch.equal(unpacked(packed(symmetric)), symmetric)
    with pytest.raises(ValueError, match="7 numbers are not the upper triangle"):
        unpacked(torch.zeros(7))


def test_a_format_3_artefact_s_whole_sums_are_packed_and_fingerprinted_as_before():
    """Format 3 stored scatter and gram whole; the fingerprint the guard and seqadapt-verify compare is, as then,
    SHA-256 over each buffer's name and bytes in name order, with the matrices whole (derived here by hand)."""
    stats = TaskStatistics(hidden_size=3, num_classes=2, projection_dim=2)
    stats.fit(torch.randn(6, 3), torch.tensor([0, 1, 0, 1, 1, 0]), torch.rand(6, 2))
    whole = {name: unpacked(t) if name in ("scatter", "gram") else t for name, t in stats.named_buffers()}
    assert whole["scatter"].shape == (3, 3) and whole["gram"].shape == (2, 2)
    upgraded = packed_statistics({f"selection.tasks.t.{name}": t for name, t in whole.items()})
    assert all(torch.equal(upgraded[f"selection.tasks.t.{name}"], t) for name, t in stats.named_buffers())
    digest = hashlib.sha256()
    for name in sorted(whole):
        digest.update(name.encode())
        digest.update(whole[name].contiguous().numpy().tobytes())
    assert tensors_sha256(stats.unpacked()) == digest.hexdigest()
    skewed = whole["scatter"] + torch.triu(torch.ones(3, 3), 1)
    with pytest.raises(ValueError, match="'selection.tasks.t.scatter' is not a symmetric matrix"):
        packed_statistics({"selection.tasks.t.scatter": skewed})
