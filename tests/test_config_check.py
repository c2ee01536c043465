"""Every config value is checked before any work, named with its key and what is allowed."""

import pytest

from seqadapt.config_check import ConfigError, check_config
from tests.cli.test_train import FAST, compose_train


def test_the_default_and_fast_configs_pass():
    check_config(compose_train([]))
    check_config(compose_train(FAST))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.train_size=-5", r"data.train_size=-5: expected a whole number >= 1 or null"),
        ("data.train_size=abc", r"data.train_size='abc': expected a whole number >= 1"),
        ("data.max_length=0", r"data.max_length=0: expected a whole number >= 8"),
        ("seed=abc", r"seed='abc': expected a whole number >= 0"),
        ("guard.mode=loose", r"guard.mode='loose': expected one of strict, report"),
        ("head_dropout=1.5", r"head_dropout=1.5: expected a number in \[0.0, 1.0\)"),
        ("tasks.order=[]", r"tasks.order=\[\]: expected a list of task names"),
    ],
)
def test_bad_values_are_named_with_what_is_allowed(override, message):
    with pytest.raises(ConfigError, match=message):
        check_config(compose_train([override]))


def test_every_problem_is_listed_at_once():
    with pytest.raises(ConfigError) as caught:
        check_config(compose_train(["data.batch_size=0", "optim.learning_rate=-1"]))
    assert "data.batch_size=0" in str(caught.value) and "optim.learning_rate=-1" in str(caught.value)


def test_adapter_settings_of_another_method_are_refused_before_any_work():
    cfg = compose_train([*FAST, "adapter=lora", "+adapter.bottleneck=8"])
    with pytest.raises(ConfigError, match=r"adapter: adapter.bottleneck is not a setting of adapter method 'lora'"):
        check_config(cfg)
    check_config(compose_train([*FAST, "adapter=ia3"]))
