"""Each method is built from its ``strategy`` config group; keys it does not take are refused by name."""

import pytest
from hydra import compose, initialize_config_dir

from seqadapt.continual import METHODS, make_plugin
from seqadapt.continual.agem import AGEM
from seqadapt.continual.ewc import EWC
from seqadapt.strategies import STRATEGIES
from seqadapt.cli.train import CONFIG_DIR


@pytest.mark.parametrize("name", sorted(METHODS))
def test_each_methods_config_file_builds_its_plugin_with_the_documented_defaults(name):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"strategy={name}"])
    plugin = make_plugin(STRATEGIES[name].continual, dict(cfg.strategy), cfg.adapter.get("method", "bottleneck"))
    assert plugin.name == name and cfg.guard.mode == "report"
    fields = {key: value for key, value in cfg.strategy.items() if key != "name"}
    assert fields == {key: getattr(plugin.config, key) for key in fields}  # the YAML's values reach the plugin


def test_a_key_of_another_method_is_refused_naming_the_keys_it_takes():
    with pytest.raises(ValueError, match=r"strategy.ewc_lambda is not a setting of strategy 'lwf'; it takes alpha, "
                                         r"temperature"):
        make_plugin("lwf", {"name": "lwf", "ewc_lambda": 1.0}, "bottleneck")
    with pytest.raises(ValueError, match=r"strategy.rows_per_task is not a setting of strategy 'adapter'"):
        make_plugin(None, {"name": "adapter", "rows_per_task": 5}, "bottleneck")
    assert make_plugin(None, {"name": "finetune_top_k", "top_k": 2}, "bottleneck") is None


def test_bad_values_and_the_wrong_adapter_are_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"strategy=olora trains a lora per task.*add adapter=lora"):
        make_plugin("olora", {"name": "olora"}, "bottleneck")
    with pytest.raises(ValueError, match=r"strategy.decay \(online EWC\) must be in \[0, 1\]"):
        make_plugin("ewc", {"decay": 2.0}, "bottleneck")
    with pytest.raises(ValueError, match=r"strategy.rows_per_task must be a whole number >= 1"):
        make_plugin("replay", {"rows_per_task": 0}, "bottleneck")
    assert isinstance(make_plugin("ewc", {"ewc_lambda": 5}, "bottleneck"), EWC)
    assert isinstance(make_plugin("agem", {}, "bottleneck"), AGEM)
