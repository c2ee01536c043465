import pytest

from seqadapt.stream.plan import check_kind, own_check_kind, plan_stages, rotation, stage_seed
from tests.stream.test_run import ORDER


class Splits:  # plan_stages reads only .spec.name and .spec.type
    def __init__(self, name, kind="classification"):
        self.spec = type("Spec", (), {"name": name, "type": kind})()


def names(tasks):
    return [t.spec.name for t in tasks]


def test_a_sequential_plan_has_a_stage_per_task_guarding_all_earlier_ones():
    plan = plan_stages([Splits(n) for n in ORDER], joint=False)
    assert [stage.name for stage in plan] == ORDER and [stage.number for stage in plan] == [1, 2, 3]
    assert [names(stage.earlier) for stage in plan] == [[], ORDER[:1], ORDER[:2]]
    assert [names(stage.seen) for stage in plan] == [ORDER[:1], ORDER[:2], ORDER]
    assert [stage.last for stage in plan] == [False, False, True]


def test_a_joint_plan_is_one_stage_of_every_task():
    (stage,) = plan_stages([Splits(n) for n in ORDER], joint=True)
    assert stage.name == "+".join(ORDER) and stage.earlier == [] and names(stage.seen) == ORDER and stage.last


def test_a_joint_plan_refuses_tasks_of_different_kinds_with_the_way_out():
    with pytest.raises(ValueError, match=r"must be of one kind; tasks.order mixes \['classification', 'regression'\]"):
        plan_stages([Splits("a"), Splits("b", "regression")], joint=True)


def test_stage_seeds_are_fixed_per_stage_and_never_shared_between_run_seeds():
    seeds = {(run, stage): stage_seed(run, stage) for run in range(20) for stage in range(20)}
    assert len(set(seeds.values())) == len(seeds)  # run 1's stage 1 is not run 0's stage 2, as seed + index was
    assert stage_seed(3, 2) == stage_seed(3, 2) and 0 <= stage_seed(3, 2) < 2**32


# guard.full_check_every=k (conf/train.yaml, docs/concepts/guard.md): "re-evaluate earlier tasks after every k-th
# stage and the last; between, check their tensors only. null: re-evaluate after the last stage only". Stage 1
# has nothing earlier, so it is full. Written out by hand per stream length, F = full, T = tensors:
SCHEDULES = {
    1: ["F", "FF", "FFF", "FFFF", "FFFFF", "FFFFFF"],
    2: ["F", "FF", "FFF", "FFTF", "FFTFF", "FFTFTF"],
    3: ["F", "FF", "FTF", "FTFF", "FTFTF", "FTFTTF"],
    None: ["F", "FF", "FTF", "FTTF", "FTTTF", "FTTTTF"],
}


@pytest.mark.parametrize("every", list(SCHEDULES))
def test_full_check_every_k_re_evaluates_after_every_kth_stage_and_the_last(every):
    for length, expected in enumerate(SCHEDULES[every], start=1):
        plan = plan_stages([Splits(f"t{i}") for i in range(length)], joint=False)
        kinds = "".join({"full": "F", "tensors": "T"}[check_kind(stage, every)] for stage in plan)
        assert kinds == expected, f"{length} stages, full_check_every={every}"


# guard.rotating=r (conf/train.yaml): between full checks, re-evaluate the r earlier tasks re-evaluated longest
# ago (learning counts; ties to the earlier task). Written out by hand for 6 tasks a..f, full_check_every=null, r=1:
#   stage 2: a (last 1)                           -> a
#   stage 3: a (last 2), b (learned 2): tie       -> a
#   stage 4: a 3, b 2, c 3                        -> b
#   stage 5: a 3, b 4, c 3, d 4                   -> a
#   stage 6 (own check, the last stage's too): a 5, b 4, c 3, d 4, e 5 -> c
# and with r=2: stage 3 -> a, b; stage 4: a 3, b 3, c 3 -> a, b; stage 5: a 4, b 4, c 3, d 4 -> c, a;
# stage 6: a 5, b 4, c 5, d 4, e 5 -> b, d.
ROTATIONS = {1: [[0], [0], [1], [0], [2]], 2: [[0], [0, 1], [0, 1], [0, 2], [1, 3]]}


@pytest.mark.parametrize("rotating", list(ROTATIONS))
def test_rotation_re_evaluates_the_tasks_re_evaluated_longest_ago(rotating):
    plan = plan_stages([Splits(f"t{i}") for i in range(6)], joint=False)
    assert [rotation(stage, None, rotating) for stage in plan[1:]] == ROTATIONS[rotating]
    assert [check_kind(stage, None, rotating) for stage in plan] == ["full"] + ["rotating"] * 4 + ["full"]
    assert [own_check_kind(stage.number, None, rotating) for stage in plan] == ["full"] + ["rotating"] * 5


@pytest.mark.parametrize(("length", "every", "rotating"), [(50, None, 1), (50, None, 3), (40, 7, 1), (30, None, 2)])
def test_every_earlier_task_is_re_evaluated_within_ceil_n_over_r_stages(length, every, rotating):
    """The bound rotation() documents: with n earlier tasks, no task waits more than ceil(n / r) stages."""
    plan = plan_stages([Splits(f"t{i}") for i in range(length)], joint=False)
    last = {}
    for stage in plan:
        kind = own_check_kind(stage.number, every, rotating)
        again = range(len(stage.earlier)) if kind == "full" else rotation(stage, every, rotating)
        assert len(again) == (len(stage.earlier) if kind == "full" else min(rotating, len(stage.earlier)))
        for i in again:
            last[i] = stage.number
        n = len(stage.earlier)
        for i in range(n):
            assert stage.number - last[i] <= -(-n // rotating), (stage.number, i, last[i])
        last[stage.index] = stage.number
