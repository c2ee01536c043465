import pytest

from seqadapt import metrics

# R[i][j]: accuracy on task j after stage i.
R = [
    [0.90, None, None],
    [0.80, 0.70, None],
    [0.60, 0.75, 0.50],
]


def test_average_accuracy_is_mean_of_last_row():
    assert metrics.average_accuracy(R) == pytest.approx((0.60 + 0.75 + 0.50) / 3)


def test_backward_transfer_hand_computed():
    # task 0: 0.60 - 0.90 = -0.30; task 1: 0.75 - 0.70 = +0.05
    assert metrics.backward_transfer(R) == pytest.approx((-0.30 + 0.05) / 2)


def test_forgetting_uses_the_best_earlier_accuracy():
    # task 0: max(0.90, 0.80) - 0.60 = 0.30; task 1: max(0.70) - 0.75 = -0.05
    assert metrics.forgetting(R) == pytest.approx((0.30 - 0.05) / 2)


def test_learning_accuracy_is_mean_of_diagonal():
    assert metrics.learning_accuracy(R) == pytest.approx((0.90 + 0.70 + 0.50) / 3)


def test_no_forgetting_gives_exact_zero():
    unchanged = [[0.9, None], [0.9, 0.8]]
    assert metrics.backward_transfer(unchanged) == 0.0
    assert metrics.forgetting(unchanged) == 0.0


def test_single_task_has_no_transfer():
    assert metrics.summary([[0.7]]) == {"acc": 0.7, "bwt": 0.0, "forgetting": 0.0, "learning_accuracy": 0.7, "fwt": None}


def test_forward_transfer_against_single_task_reference():
    # diagonal 0.90, 0.70, 0.50 vs trained alone 0.85, 0.75, 0.50
    assert metrics.forward_transfer(R, [0.85, 0.75, 0.50]) == pytest.approx((0.05 - 0.05 + 0.0) / 3)
    assert metrics.summary(R, [0.85, 0.75, 0.50])["fwt"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="2 entries for 3 tasks"):
        metrics.forward_transfer(R, [0.1, 0.2])


def test_joint_summary_has_only_acc():
    assert metrics.joint_summary([0.9, 0.7]) == {
        "acc": pytest.approx(0.8), "bwt": None, "forgetting": None, "learning_accuracy": None, "fwt": None
    }


@pytest.mark.parametrize(("bad", "message"), [
    ([], "the accuracy matrix is empty"),
    ([[0.5, 0.5]], r"row 0 of the accuracy matrix must have 1 entries, the first 1 filled"),
    ([[None]], r"row 0 of the accuracy matrix must have 1 entries, the first 1 filled"),
    ([[0.5, None], [0.5, None]], r"row 1 of the accuracy matrix must have 2 entries, the first 2 filled"),
])
def test_malformed_matrix_is_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        metrics.summary(bad)
