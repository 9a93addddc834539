"""The beyond architecture and recipe: shapes, FLOPs, mixing, and a few real training steps."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from conftest import write_report_layout

from fer_utils.models import resnet as beyond
from fer_utils.errors import ConfigError


def test_config_checks_and_round_trip():
    cfg = beyond.BeyondConfig(widths=(8, 16), blocks=(1, 2), image_size=32)
    assert beyond.BeyondConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="one entry per stage"):
        beyond.BeyondConfig(widths=(8, 16), blocks=(1,))
    with pytest.raises(ConfigError, match="unknown BeyondConfig keys"):
        beyond.BeyondConfig.from_dict({"depth": 3})
    with pytest.raises(ConfigError, match="balance"):
        beyond.BeyondConfig(balance="oversample")


def test_default_network_size_and_flops():
    m = beyond.build_beyond(beyond.BeyondConfig())
    assert m.count_params() == 1_232_231  # pinned: the figure quoted in the README/report
    assert beyond.flops_per_image(m) == 135_007_744
    assert m.output_shape == (None, 7)


def test_mix_batch_labels_follow_the_pasted_area():
    x = np.zeros((2, 8, 8, 1), np.float32)
    x[1] = 1.0
    y = np.eye(2, dtype=np.float32)
    xm, ym, lam = (keras.ops.convert_to_numpy(t) for t in beyond.mix_batch(x, y, np.array([1, 0]), np.float32(0.75), True, np.float32(0.5), np.float32(0.5)))
    assert lam == pytest.approx(1 - xm[0].mean())  # the label weight is the share of pixels kept
    assert ym[0].tolist() == pytest.approx([float(lam), 1 - float(lam)])
    xm, ym, lam = (keras.ops.convert_to_numpy(t) for t in beyond.mix_batch(x, y, np.array([1, 0]), np.float32(0.3), False, np.float32(0.5), np.float32(0.5)))
    assert lam == pytest.approx(0.3) and xm[0].mean() == pytest.approx(0.7)


def test_class_weights_balance():
    w = beyond.class_weights(np.array([0, 0, 0, 1]), 2, "inverse")
    assert w[1] == pytest.approx(3 * w[0])
    assert np.mean(w[[0, 0, 0, 1]]) == pytest.approx(1.0)
    assert beyond.class_weights(np.array([0, 1]), 2, "none").tolist() == [1.0, 1.0]


def test_augmentation_is_identity_at_inference_and_stays_in_range():
    layer = beyond.BeyondAugmentation(gray_prob=1.0, lowres_prob=1.0, erase_prob=1.0, seed=0)
    x = np.random.default_rng(0).random((4, 16, 16, 3)).astype("float32")
    assert np.array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert np.allclose(out[..., 0], out[..., 1])  # gray_prob=1: every face grayscale


@pytest.mark.slow
def test_recipe_trains_saves_loads_and_evaluates(tmp_path):
    from fer_utils.data import datasets
    from fer_utils.training.beyond_train import train_beyond
    from fer_utils.apply.evaluate import evaluate

    root = write_report_layout(tmp_path / "ds", per_class=(6, 2))
    ds = datasets.load(root, image_size=32, progress=False, verbose=False)
    cfg = beyond.SMOKE
    run = tmp_path / "run"
    m = train_beyond(ds, run, cfg, verbose=False)
    assert sorted(p.name for p in run.iterdir()) == [".lock", "config.json", "history.csv", "metrics.json", "model-e0002.keras", "model-e0002.keras.classes.json"]
    assert len((run / "history.csv").read_text().splitlines()) == 3
    ev = m["evaluations"]["2"]
    assert ev["test"]["n"] == 14 and len(ev["test"]["ci95"]) == 2 and ev["holdout"]["n"] == 7
    assert m["cost"]["parameters"] > 0 and m["cost"]["flops_per_image"] > 0
    # the saved model loads (custom layer registered) and scores the same test faces alike
    r = evaluate(run / "model-e0002.keras", root, tta="flip")
    assert r["accuracy"] == pytest.approx(ev["test_tta"]["accuracy"])
    # a finished run is not trained again; a different config in the same folder is refused
    again = train_beyond(ds, run, cfg, verbose=False)
    assert again == json.loads((run / "metrics.json").read_text())
    with pytest.raises(Exception, match="holds another configuration"):
        train_beyond(ds, run, cfg.replace(seed=1), verbose=False)


@pytest.mark.slow
def test_an_interrupted_run_resumes_to_the_same_history(tmp_path):
    from fer_utils.data import datasets
    from fer_utils.training.beyond_train import train_beyond

    root = write_report_layout(tmp_path / "ds", per_class=(6, 2))
    ds = datasets.load(root, image_size=32, progress=False, verbose=False)
    cfg = beyond.SMOKE.replace(epochs=3)
    whole = train_beyond(ds, tmp_path / "whole", cfg, verbose=False)
    part = tmp_path / "part"
    assert train_beyond(ds, part, cfg, verbose=False, stop_after=1) == {}  # what a kill after epoch 1 leaves
    assert (part / "checkpoint.keras").exists() and len((part / "history.csv").read_text().splitlines()) == 2
    resumed = train_beyond(ds, part, cfg, verbose=False)

    def cols(run):
        return [line.split(",")[:-1] for line in (run / "history.csv").read_text().splitlines()]  # all but seconds

    assert cols(part) == cols(tmp_path / "whole")
    assert not (part / "checkpoint.keras").exists()
    for split in ("holdout", "test", "test_tta"):
        assert resumed["evaluations"]["3"][split]["confusion"] == whole["evaluations"]["3"][split]["confusion"]
