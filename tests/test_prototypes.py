import pytest
import torch

from seqadapt.prototypes import TaskPrototypes


def test_fit_stores_class_means_and_counts():
    prototypes = TaskPrototypes(hidden_size=2, num_labels=3)
    features = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    prototypes.fit(features, torch.tensor([0, 0, 2]))
    assert torch.equal(prototypes.centroids, torch.tensor([[2.0, 0.0], [0.0, 0.0], [0.0, 2.0]]))
    assert torch.equal(prototypes.counts, torch.tensor([2.0, 0.0, 1.0]))


def test_similarity_is_the_nearest_seen_centroid_and_skips_unseen_classes():
    prototypes = TaskPrototypes(hidden_size=2, num_labels=3)
    prototypes.fit(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 2]))
    # class 1 was never seen: its zero centroid must not count as a match
    similarity = prototypes.similarity(torch.tensor([[5.0, 0.0], [1.0, 1.0], [-1.0, 0.0]]))
    assert torch.allclose(similarity, torch.tensor([1.0, 2 ** -0.5, 0.0]), atol=1e-6)


def test_unfitted_prototypes_and_empty_splits_are_refused():
    prototypes = TaskPrototypes(hidden_size=2, num_labels=2)
    with pytest.raises(RuntimeError, match="never computed"):
        prototypes.similarity(torch.ones(1, 2))
    with pytest.raises(ValueError, match="training split is empty"):
        prototypes.fit(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))


def test_prototypes_are_buffers_not_parameters():
    prototypes = TaskPrototypes(hidden_size=4, num_labels=2)
    assert list(prototypes.parameters()) == []
    assert {name for name, _ in prototypes.named_buffers()} == {"centroids", "counts"}
