"""The beyond recipe's ablations (fer_utils.study.ablation): holdout only, paired with the baseline."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import write_report_layout
from fer_utils.study import ablation
from fer_utils.models.registry import preset
from fer_utils.training.config import RunConfig
from fer_utils.errors import ConfigError


def test_views_keep_the_faces_and_drop_colour_and_resolution():
    x = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    assert ablation.view(x, "as-is") is x
    g, g48 = ablation.view(x, "gray"), ablation.view(x, "gray48")
    assert g.shape == g48.shape == x.shape and g.dtype == g48.dtype == np.uint8
    assert (g[..., 0] == g[..., 2]).all() and (g48[..., 0] == g48[..., 1]).all()
    assert np.abs(g48.astype(int) - g.astype(int)).mean() > 5  # noise does not survive 48x48
    with pytest.raises(ConfigError, match="view 'sepia'"):
        ablation.view(x, "sepia")


def test_variants_are_checked_and_baseline_comes_first():
    assert ablation.check_variants("no_mix,baseline") == ["baseline", "no_mix"]
    assert ablation.check_variants(["no_erase"]) == ["baseline", "no_erase"]
    with pytest.raises(ConfigError, match="no_dropout"):
        ablation.check_variants("no_mix,no_dropout")
    for changes in ablation.VARIANTS.values():
        RunConfig(data="", model="resnet").replace(**changes)  # every variant is a valid recipe


@pytest.mark.slow
def test_ablation_trains_each_variant_on_one_holdout_and_never_scores_test(tmp_path):
    from fer_utils.data import datasets

    root = write_report_layout(tmp_path / "ds", per_class=(6, 2))
    ds = datasets.load(root, image_size=32, progress=False, verbose=False)
    out = tmp_path / "abl"
    model, fields = preset("resnet-smoke")
    r = ablation.run_ablation(ds, out, RunConfig(data="", model=model, **{**fields, "epochs": 1}), ["no_mix"], verbose=False)
    assert list(r["variants"]) == ["baseline", "no_mix"] and r["holdout_faces"] == 7
    assert json.loads((out / "ablation.json").read_text()) == json.loads(json.dumps(r))
    for name in ("baseline", "no_mix"):
        ev = json.loads((out / name / "metrics.json").read_text())["evaluations"]["1"]
        assert "holdout" in ev and "test" not in ev and "test_tta" not in ev
    d = r["variants"]["no_mix"]["as-is"]["vs_baseline"]
    acc = r["variants"]["no_mix"]["as-is"]["accuracy"] - r["variants"]["baseline"]["as-is"]["accuracy"]
    assert d["difference"] == pytest.approx(acc) and 0 <= d["p_mcnemar"] <= 1
    assert "vs_baseline" not in r["variants"]["baseline"]["as-is"]
    assert "no_mix" in ablation.format_ablation(r)
