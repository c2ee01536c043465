"""Stored sums combined at inference give exactly what the methods compute from the raw features."""

import pytest
import torch

from seqadapt.selection import SelectionConfig, SelectionState
from seqadapt.selection.combine import gaussian_model, mahalanobis_scores, ridge_model, ridge_scores
from seqadapt.selection.projection import RandomProjection
from seqadapt.selection.statistics import TaskStatistics


def fitted(features: torch.Tensor, labels: torch.Tensor, classes: int, projection: RandomProjection) -> TaskStatistics:
    stats = TaskStatistics(features.shape[1], classes, projection.dim)
    stats.fit(features, labels, projection(features))
    return stats


def two_tasks(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(40, 6, generator=generator) + 2.0
    b = torch.randn(30, 6, generator=generator) - 1.0
    labels_a = torch.arange(40) % 3
    labels_b = torch.zeros(30, dtype=torch.long)  # one Gaussian: a kind without classes
    return (a, labels_a, 3), (b, labels_b, 1)


def test_mahalanobis_equals_lda_with_a_pooled_shrunk_covariance_from_raw_features():
    projection = RandomProjection(6, 16, seed=1)
    tasks = two_tasks()
    stats = [fitted(*task, projection) for task in tasks]
    shrinkage = 0.2
    # from the raw features: class means, one pooled within-class covariance, shrunk towards (tr/d) I
    means, deviations = [], []
    for x, labels, classes in tasks:
        for k in range(classes):
            rows = x[labels == k].double()
            means.append(rows.mean(0))
            deviations.append(rows - rows.mean(0))
    centred = torch.cat(deviations)
    covariance = centred.T @ centred / (len(centred) - len(means))
    shrunk = (1 - shrinkage) * covariance + shrinkage * covariance.trace() / 6 * torch.eye(6, dtype=torch.float64)
    queries = torch.randn(5, 6, generator=torch.Generator().manual_seed(7))
    distances = torch.stack(
        [torch.einsum("bi,ij,bj->b", queries.double() - m, torch.linalg.inv(shrunk), queries.double() - m) for m in means], 1
    )
    expected = torch.stack([-distances[:, :3].min(1).values, -distances[:, 3]], dim=1)
    got = mahalanobis_scores(queries, gaussian_model(stats, shrinkage), 2)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_ranpac_equals_ridge_regression_on_the_projected_features_of_all_tasks():
    projection = RandomProjection(6, 16, seed=1)
    tasks = two_tasks()
    stats = [fitted(*task, projection) for task in tasks]
    phi = torch.cat([projection(x) for x, _, _ in tasks]).double()
    targets = torch.zeros(len(phi), 4, dtype=torch.float64)  # task a's 3 classes, then task b's one
    targets[torch.arange(40), tasks[0][1]] = 1.0
    targets[40:, 3] = 1.0
    gram = phi.T @ phi
    lam = 0.05 * gram.trace() / 16
    weights = torch.linalg.solve(gram + lam * torch.eye(16, dtype=torch.float64), phi.T @ targets)
    queries = torch.randn(5, 6, generator=torch.Generator().manual_seed(7))
    outputs = projection(queries).double() @ weights
    expected = torch.stack([outputs[:, :3].max(1).values, outputs[:, 3]], dim=1)
    got = ridge_scores(projection(queries), ridge_model(stats, 0.05), 2)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-6)  # the sums are stored in float32


def test_classes_without_training_examples_are_never_matched():
    """One feature, worked by hand. Task a: class 0 at 4 and 6 (mean 5), class 1 at 9 and 11 (mean 10), class 2
    never seen (its stored mean is 0); task b: one class at -4 and -6 (mean -5). The pooled within-class variance
    is (2 + 2 + 2) / (6 examples - 3 seen classes) = 2. A query at -1 is (-1 - 5)^2 / 2 = 18 from task a's
    nearest seen class and (-1 + 5)^2 / 2 = 8 from task b's, so b wins; the unseen class's zero mean, only
    1 / 2 away, would wrongly give the row to task a."""
    stats = [TaskStatistics(1, 3, 0), TaskStatistics(1, 1, 0)]
    stats[0].fit(torch.tensor([[4.0], [6.0], [9.0], [11.0]]), torch.tensor([0, 0, 1, 1]), None)
    stats[1].fit(torch.tensor([[-4.0], [-6.0]]), torch.tensor([0, 0]), None)
    model = gaussian_model(stats, shrinkage=0.0)
    assert model.seen.tolist() == [True, True, False, True]
    scores = mahalanobis_scores(torch.tensor([[-1.0]]), model, 2)
    assert scores[0].tolist() == pytest.approx([-18.0, -8.0], rel=1e-5)  # the jitter adds 1e-6 of the variance
    assert scores.argmax(dim=1).tolist() == [1]


def test_ridge_scores_skip_classes_without_training_examples():
    """An unseen class's ridge targets are all zero, so its weights are zero and it scores exactly 0 on every
    row; a row whose seen classes all score below 0 must still get its best seen class, not that 0."""
    stats = TaskStatistics(1, 2, projection_dim=1)
    features = torch.tensor([[1.0], [2.0]])
    stats.fit(features, torch.tensor([0, 0]), features)  # the identity as its projection; class 1 never seen
    model = ridge_model([stats], ridge=0.0)
    # G = 1 + 4 = 5 and Q = [1 + 2, 0] = [3, 0]: weights [3/5, 0], so a row at -1 scores -3/5 for class 0
    assert ridge_scores(torch.tensor([[-1.0]]), model, 1).tolist() == [[pytest.approx(-0.6, rel=1e-6)]]


def test_the_projection_is_a_function_of_its_seed_and_fingerprinted():
    assert torch.equal(RandomProjection(8, 32, seed=3).weight, RandomProjection(8, 32, seed=3).weight)
    assert RandomProjection(8, 32, seed=3).sha256 == RandomProjection(8, 32, seed=3).sha256
    assert RandomProjection(8, 32, seed=3).sha256 != RandomProjection(8, 32, seed=4).sha256
    assert "weight" not in RandomProjection(8, 32, seed=3).state_dict()  # rebuilt from the seed, never stored


def test_combinations_are_remembered_until_a_task_s_statistics_change():
    state = SelectionState(6, 3, SelectionConfig(layers=(-1,), projection_dim=16))
    tasks = two_tasks()
    for name, (x, labels, classes) in zip("ab", tasks):
        state.add_task(name, classes, torch.device("cpu"))
        state[name].fit(x, labels, state.projection(x))
    calls = []

    def compute():
        calls.append(1)
        return len(calls)

    assert state.combined(("k",), ["a", "b"], compute) == 1
    assert state.combined(("k",), ["a", "b"], compute) == 1  # nothing changed: remembered
    state["b"].fit(tasks[1][0] * 2, tasks[1][1], None)
    assert state.combined(("k",), ["a", "b"], compute) == 2  # b was refitted: computed again


def test_layers_the_backbone_does_not_have_are_refused_by_name():
    with pytest.raises(ValueError, match=r"selection.layers \[0, 7\]: \[7\] is not a hidden state of this backbone, which has 3"):
        SelectionState(6, 3, SelectionConfig(layers=(0, 7)))


def test_the_pooled_scatter_grows_by_the_new_task_alone_and_equals_a_sum_from_scratch(monkeypatch):
    from seqadapt.selection import SelectionConfig, SelectionState
    from seqadapt.selection import state as state_module
    from seqadapt.selection.statistics import unpacked

    state = SelectionState(hidden_size=4, hidden_states=3, config=SelectionConfig(layers=[-1]))
    for i, name in enumerate("abc"):
        state.add_task(name, 2, torch.device("cpu"))
        state[name].fit(torch.randn(8, 4, generator=torch.Generator().manual_seed(i)), torch.arange(8) % 2, None)
    summed_over = []
    original = state_module.summed
    monkeypatch.setattr(state_module, "summed", lambda stats, *args: summed_over.append(len(stats)) or original(stats, *args))
    state.pooled_scatter(["a", "b"])
    grown = state.pooled_scatter(["a", "b", "c"])
    by_hand = sum(unpacked(state[n].scatter).double() for n in "abc")  # float64, in order, as a whole matrix
    assert summed_over == [2, 1] and torch.equal(unpacked(grown), by_hand)
    with torch.no_grad():
        state["a"].scatter.add_(1.0)  # an in-place write to a summed task: the sum is made again
    again = state.pooled_scatter(["a", "b", "c"])
    assert summed_over == [2, 1, 3] and torch.equal(unpacked(again), sum(unpacked(state[n].scatter).double() for n in "abc"))
