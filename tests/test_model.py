"""fer_utils.models.report_cnn: the report's CNN as DESIGN.md reads Figure 4."""

from __future__ import annotations

import numpy as np
import pytest

from fer_utils.errors import ConfigError
from fer_utils.models.report_cnn import build_model, feature_map_sizes, softmax_crossentropy
from fer_utils.models.registry import load_model, save_model

# Pinned parameter counts at 128x128 (2, 4 and 6 from DESIGN.md; 3 and 5 follow the same reading).
PARAMS = {2: 3_692_519, 3: 1_867_815, 4: 901_287, 5: 688_551, 6: 1_639_335}


@pytest.mark.parametrize("depth", sorted(PARAMS))
def test_parameter_counts(depth):
    assert build_model(depth, 128, compile=False).count_params() == PARAMS[depth]


def test_layers_follow_the_reading():
    m = build_model(4, 128, compile=False)
    convs = [l for l in m.layers if l.name.startswith("conv")]
    assert [(c.filters, c.padding) for c in convs] == [(16, "valid"), (32, "valid"), (64, "same"), (128, "same")]
    assert m.input.dtype == "uint8"  # data stays uint8 up to the model
    assert m.layers[-1].units == 7 and m.layers[-2].units == 128


def test_compiled_as_the_report():
    m = build_model(2, 64, lr=0.01)
    assert type(m.optimizer).__name__ == "Adam"
    assert float(np.asarray(m.optimizer.learning_rate)) == pytest.approx(0.01)
    assert m.loss is softmax_crossentropy  # categorical cross-entropy, the same on every backend


def test_seed_fixes_the_initial_weights_and_saving_keeps_the_loss(tmp_path):
    a, b = build_model(2, 32, seed=5), build_model(2, 32, seed=5)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    save_model(a, tmp_path / "m.keras")
    m, _ = load_model(tmp_path / "m.keras")
    assert m.loss is softmax_crossentropy


@pytest.mark.parametrize("depth,size", [(6, 32), (2, 5), (4, 20)])
def test_collapsing_feature_map_is_refused(depth, size):
    with pytest.raises(ConfigError, match=rf"depth {depth} at input size {size}: the feature map collapses.*at least \d+"):
        build_model(depth, size)


def test_feature_map_sizes():
    assert feature_map_sizes(6, 128) == [63, 30, 15, 7, 3, 1]


@pytest.mark.parametrize("bad", [1, 7, 2.5])
def test_bad_depth(bad):
    with pytest.raises(ConfigError, match="depth"):
        build_model(bad, 128)


def test_augmentation_only_in_training():
    m = build_model(2, 32, seed=0)
    x = np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
    a = np.asarray(m(x, training=False))
    b = np.asarray(m(x, training=False))
    np.testing.assert_array_equal(a, b)
    plain = build_model(2, 32, augment=False, compile=False)
    plain.set_weights(m.get_weights())
    np.testing.assert_allclose(np.asarray(plain(x, training=False)), a, rtol=1e-6)
    assert not np.allclose(np.asarray(m(x, training=True)), a)


def test_saved_model_carries_class_names(tmp_path):
    m = build_model(2, 32, compile=True, class_names=("a", "b", "c", "d", "e", "f", "g"))
    save_model(m, tmp_path / "m.keras")
    m2, names = load_model(tmp_path / "m.keras")
    assert names == ("a", "b", "c", "d", "e", "f", "g")
    x = np.zeros((1, 32, 32, 3), np.uint8)
    np.testing.assert_allclose(np.asarray(m2(x)), np.asarray(m(x)), rtol=1e-6)
