"""The residual network (model ``resnet``) and its recipe: shapes, FLOPs, mixing, and a few real
training steps through the one trainer."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import write_report_layout

from fer_utils.errors import ConfigError
from fer_utils.models import resnet as beyond
from fer_utils.models.recipes import resnet_train_flops
from fer_utils.models.registry import preset
from fer_utils.training.config import RunConfig


def smoke(data="", **changes) -> RunConfig:
    model, fields = preset("resnet-smoke")
    return RunConfig(data=data, model=model, **{**fields, **changes})


def test_config_checks_and_round_trip():
    cfg = RunConfig(data="f", model="resnet", widths=(8, 16), blocks=(1, 2), image_size=32)
    assert RunConfig.from_dict(cfg.to_dict()) == cfg and cfg.widths == (8, 16) and cfg.selection == "holdout"
    assert cfg.run_id.startswith("resnet-e60-b128-s0-holdout-")
    with pytest.raises(ConfigError, match="one entry per stage"):
        RunConfig(data="f", model="resnet", widths=(8, 16), blocks=(1,))
    with pytest.raises(ConfigError, match=r"unknown RunConfig keys \['depth'\] for model 'resnet'"):
        RunConfig.from_dict({"data": "f", "model": "resnet", "depth": 3})
    with pytest.raises(ConfigError, match="balance"):
        RunConfig(data="f", model="resnet", balance="oversample")
    with pytest.raises(ConfigError, match="selection 'test': the resnet recipe selects on a held-out part"):
        RunConfig(data="f", model="resnet", selection="test")
    with pytest.raises(ConfigError, match="3 stages need at least 16 pixels"):
        smoke(image_size=8)


def test_a_legacy_beyond_config_reads_as_a_resnet_run():
    old = {"beyond": {**smoke().recipe.to_dict(), "image_size": 32, "batch_size": 32, "lr": 0.002, "seed": 3,
                      "val_fraction": 0.1, "model": "beyond_resnet"}, "data": "f", "model": "beyond_resnet"}
    assert RunConfig.from_dict(old) == smoke(data="f", seed=3)


def test_default_network_size_and_flops():
    cfg = RunConfig(data="", model="resnet")
    m = beyond.build_resnet(cfg)
    assert m.count_params() == 1_232_231  # pinned: the figure quoted in the README/report
    assert beyond.flops_per_image(m) == 135_007_744
    assert resnet_train_flops(cfg) == 3 * 135_007_744  # the engine's closed form agrees with the built model
    assert resnet_train_flops(smoke()) == 3 * beyond.flops_per_image(beyond.build_resnet(smoke()))
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
    from fer_utils.apply.evaluate import evaluate
    from fer_utils.data import datasets
    from fer_utils.training.rundir import read_metrics
    from fer_utils.training.trainer import train_run

    root = write_report_layout(tmp_path / "ds", per_class=(6, 2))
    ds = datasets.load(root, image_size=32, progress=False, verbose=False)
    cfg = smoke(data=ds.fingerprint)
    run = tmp_path / "run"
    rows = train_run(run, cfg, ds, verbose=False)
    assert sorted(p.name for p in run.iterdir()) == [".lock", "config.json", "history.csv", "metrics.json", "model-e0002.keras", "model-e0002.keras.classes.json"]
    assert len(rows) == 2 and len((run / "history.csv").read_text().splitlines()) == 3
    m = read_metrics(run)
    ev = m["evaluations"]["2"]
    assert ev["test"]["n"] == 14 and len(ev["test"]["ci95"]) == 2 and ev["holdout"]["n"] == 7
    assert m["cost"]["parameters"] > 0 and m["cost"]["flops_per_image"] > 0 and m["model"] == "resnet"
    # the saved model loads (custom layer registered) and scores the same test faces alike
    r = evaluate(run / "model-e0002.keras", root, tta="flip")
    assert r["accuracy"] == pytest.approx(ev["test_tta"]["accuracy"])
    # a finished run is not trained again; other epochs are refused; a different config in the same folder too
    train_run(run, cfg, ds, verbose=False)
    assert read_metrics(run) == m
    with pytest.raises(ConfigError, match="trained to its recipe's 2 epochs"):
        train_run(run, cfg, ds, 5, verbose=False)
    with pytest.raises(Exception, match="holds a different configuration"):
        train_run(run, cfg.replace(seed=1), ds, verbose=False)


@pytest.mark.slow
def test_an_interrupted_run_resumes_to_the_same_history(tmp_path):
    from fer_utils.data import datasets
    from fer_utils.training.rundir import read_metrics
    from fer_utils.training.trainer import train_run

    root = write_report_layout(tmp_path / "ds", per_class=(6, 2))
    ds = datasets.load(root, image_size=32, progress=False, verbose=False)
    cfg = smoke(data=ds.fingerprint, epochs=3)
    train_run(tmp_path / "whole", cfg, ds, verbose=False)
    part = tmp_path / "part"
    assert len(train_run(part, cfg, ds, verbose=False, stop_after=1)) == 1  # what a kill after epoch 1 leaves
    assert (part / "checkpoint.keras").exists() and len((part / "history.csv").read_text().splitlines()) == 2
    assert read_metrics(part)["evaluations"] == {}
    train_run(part, cfg, ds, verbose=False)

    def cols(run):
        return [line.split(",")[:-1] for line in (run / "history.csv").read_text().splitlines()]  # all but seconds

    assert cols(part) == cols(tmp_path / "whole")
    assert not (part / "checkpoint.keras").exists()
    resumed, whole = read_metrics(part), read_metrics(tmp_path / "whole")
    for split in ("holdout", "test", "test_tta"):
        assert resumed["evaluations"]["3"][split]["confusion"] == whole["evaluations"]["3"][split]["confusion"]


def test_loosely_framed_faces_shrink_the_face_and_stay_off_by_default():
    """loose_prob: the face shrunk to 55-90% of the side (preset resnet-loose); at 0 (the recipe's
    default) nothing is drawn for it, so the augmentation is the one every run trained with, and
    the field stays out of the configuration (run ids unchanged)."""
    quiet = dict(rotation_deg=0.0, scale=0.0, shift=0.0, brightness=0.0, contrast=0.0, gray_prob=0.0, lowres_prob=0.0, erase_prob=0.0)
    x = np.zeros((8, 64, 64, 3), "float32")
    x[:, :, 8:56] = 1.0  # a bright band 48 px wide, dark at the left and right edges
    width = lambda out: (keras.ops.convert_to_numpy(out)[:, 32, :, 0] > 0.5).sum(axis=1)  # noqa: E731
    assert width(beyond.BeyondAugmentation(**quiet, seed=0)(x, training=True)).tolist() == [48] * 8
    shrunk = width(beyond.BeyondAugmentation(**quiet, loose_prob=1.0, seed=0)(x, training=True))
    assert (shrunk <= 0.9 * 48 + 1).all() and (shrunk >= 0.55 * 48 - 1).all() and len(set(shrunk.tolist())) > 1
    a = keras.ops.convert_to_numpy(beyond.BeyondAugmentation(seed=3)(x, training=True))
    b = keras.ops.convert_to_numpy(beyond.BeyondAugmentation(loose_prob=0.0, seed=3)(x, training=True))
    assert np.array_equal(a, b)
    plain = RunConfig(data="x", model="resnet")
    assert "loose_prob" not in plain.to_dict() and plain.loose_prob == 0.0
    model, fields = preset("resnet-loose")
    loose = RunConfig(data="x", model=model, **fields)
    assert loose.to_dict()["loose_prob"] == 0.25 and loose.run_id != plain.run_id
    assert RunConfig.from_dict(loose.to_dict()).run_id == loose.run_id
    with pytest.raises(ConfigError, match="loose_prob"):
        RunConfig(data="x", model="resnet", loose_prob=2.0)
