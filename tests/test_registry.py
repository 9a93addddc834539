"""fer_utils.models.registry and the one machinery: every family is a name with a recipe and a
training recipe, builds from a RunConfig, and a model file of any family loads in every command
in a fresh process, whatever was imported before."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT, run_fer, write_report_layout
from fer_utils.errors import ConfigError
from fer_utils.models import registry
from fer_utils.training.config import RunConfig
from fer_utils.training.recipes import TRAINING


def test_every_family_has_a_training_recipe_and_presets_build_configs():
    assert set(registry.names()) == set(TRAINING) == {"report_cnn", "resnet"}
    for name in registry.PRESETS:
        model, fields = registry.preset(name)
        cfg = RunConfig(data="", model=model, **fields)
        assert cfg.model == model and registry.train_flops(cfg) > 0
    base, wide = (RunConfig(data="", model="resnet", **registry.preset(n)[1]) for n in ("resnet", "resnet-wide"))
    assert wide.to_dict().keys() == base.to_dict().keys() and wide.run_id != base.run_id
    assert {k for k, v in wide.to_dict().items() if base.to_dict()[k] != v} == {"stem", "widths"}  # only the channels
    assert 2.1 < registry.train_flops(wide) / registry.train_flops(base) < 2.3  # about the 96 px point's work per face
    with pytest.raises(ConfigError, match="model 'vgg': expected one of report_cnn, resnet"):
        RunConfig(data="", model="vgg")
    with pytest.raises(ConfigError, match="preset 'x': expected one of"):
        registry.preset("x")


def test_a_config_is_made_and_checked_without_keras():
    """Configurations, run ids and FLOP counts need no backend: a bad value answers at once."""
    code = ("import sys; from fer_utils.training.config import RunConfig; from fer_utils.models.registry import train_flops; "
            "c = RunConfig(data='x', model='resnet'); print(c.run_id, train_flops(c)); "
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "[]"


def test_report_cnn_run_ids_are_the_ones_published():
    """The published runs' folders are named by today's run ids (the config.json of each)."""
    for cfg_file in sorted((ROOT / "published").glob("*/runs/*/config.json")):
        assert RunConfig.from_dict(json.loads(cfg_file.read_text())).run_id == cfg_file.parent.name


@pytest.mark.slow
def test_a_saved_model_of_each_family_loads_in_every_command_in_a_fresh_process(tmp_path):
    data = write_report_layout(tmp_path / "ds", per_class=(1, 2))
    for preset in ("report_cnn", "resnet-smoke"):
        model, fields = registry.preset(preset)
        cfg = RunConfig(data="", model=model, **{**fields, "image_size": 32})
        registry.save_model(registry.build(cfg, 7), tmp_path / f"{model}.keras")
    for model in ("report_cnn", "resnet"):
        path = str(tmp_path / f"{model}.keras")
        ev = run_fer("evaluate", path, str(data), "--json", home=tmp_path / "home")
        assert ev.returncode == 0 and json.loads(ev.stdout)["n"] == 14, ev.stderr[-2000:]
        org = run_fer("organize", str(data / "class" / "test"), str(tmp_path / f"out-{model}"), "--model", path, home=tmp_path / "home")
        assert org.returncode == 0 and "14 sorted" in org.stdout, org.stderr[-2000:]
    cmp_ = run_fer("compare", str(tmp_path / "report_cnn.keras"), str(tmp_path / "resnet.keras"), str(data), home=tmp_path / "home")
    assert cmp_.returncode == 0 and "McNemar" in cmp_.stdout, cmp_.stderr[-2000:]
