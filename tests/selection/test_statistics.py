"""A task's selection statistics: exact sums, only of seen classes, buffers that belong to the task."""

import pytest
import torch

from seqadapt.selection import TaskStatistics


def test_fit_stores_class_means_counts_and_within_class_scatter():
    stats = TaskStatistics(hidden_size=2, num_classes=3, projection_dim=0)
    features = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    stats.fit(features, torch.tensor([0, 0, 2]), None)
    assert torch.equal(stats.centroids, torch.tensor([[2.0, 0.0], [0.0, 0.0], [0.0, 2.0]]))
    assert torch.equal(stats.counts, torch.tensor([2.0, 0.0, 1.0]))
    # class 0: deviations (-1, 0) and (1, 0); class 2: none
    assert torch.equal(stats.scatter, torch.tensor([[2.0, 0.0], [0.0, 0.0]]))


def test_fit_stores_ranpac_gram_and_targets_of_the_projected_features():
    stats = TaskStatistics(hidden_size=2, num_classes=2, projection_dim=3)
    features = torch.randn(5, 2)
    projected = torch.rand(5, 3)
    labels = torch.tensor([0, 1, 1, 0, 1])
    stats.fit(features, labels, projected)
    assert torch.allclose(stats.gram, projected.T @ projected, atol=1e-6)
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
        "counts": (2,), "centroids": (2, 4), "scatter": (4, 4), "gram": (8, 8), "ridge_targets": (8, 2), "temperature": (),
    }
    assert float(stats.temperature) == 1.0
