"""The comparison rules of seqadapt-verify, on outputs made by hand."""

import pytest
import torch

from seqadapt.comparison import Tolerance, environment_changes, max_abs_difference

RECORDED = {"device": "cpu", "torch": "2.13.0", "torch_threads": 2, "precision": "32-true"}
HERE = {"device": "cpu", "torch": "2.13.0", "torch_threads": 2}


def test_the_largest_difference_counts_equal_infinities_as_equal_and_a_nan_as_infinitely_far():
    reference = torch.tensor([[1.0, float("-inf")], [0.5, 2.0]])
    assert max_abs_difference(reference.clone(), reference) == 0.0
    assert max_abs_difference(reference + torch.tensor([[0.0, 0.0], [0.25, -0.125]]), reference) == 0.25
    assert max_abs_difference(torch.tensor([[1.0, float("nan")], [0.5, 2.0]]), reference) == float("inf")
    assert max_abs_difference(torch.tensor([[1.0, float("inf")], [0.5, 2.0]]), reference) == float("inf")


@pytest.mark.parametrize(("recorded", "changes"), [
    (RECORDED, []),
    ({**RECORDED, "torch_threads": 1}, ["torch_threads: 2 here, 1 when recorded"]),
    ({**RECORDED, "precision": "bf16-mixed"}, ["precision: float32 here, bf16-mixed when recorded"]),
    ({"device": "cuda"}, ["device: cpu here, cuda when recorded"]),  # keys a record lacks are not compared
    (None, None),
])
def test_what_makes_another_environment(recorded, changes):
    assert environment_changes(recorded, HERE) == changes


@pytest.mark.parametrize("bad", [{"max_abs_diff": -1.0}, {"min_agreement": 1.5}, {"max_score_diff": float("nan")}])
def test_a_tolerance_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match="a tolerance needs max_abs_diff >= 0"):
        Tolerance(**bad)
