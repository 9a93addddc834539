"""The `fer` command: help everywhere, one-line errors, and the library behind it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fer_utils.cli import main
from fer_utils.errors import FerError

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def fer(*args, **kw):
    return subprocess.run([sys.executable, "-m", "fer_utils.cli", *args], capture_output=True, text=True, timeout=300, **kw)


def _commands(parser=None, prefix=()):
    """Every command and subcommand of `fer`, read from its parser (a new command is covered)."""
    import argparse

    from fer_utils.cli.parser import build_parser

    parser = parser or build_parser()
    out = [list(prefix)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += _commands(sub, (*prefix, name))
    return out


def test_the_command_list_is_read_from_the_parser():
    names = {" ".join(c) for c in _commands()}
    assert {"", "data info", "model summary", "train", "run", "tables", "report", "publish", "organize",
            "evaluate", "compare", "runs", "synth", "predict", "ship", "export"} <= names


@pytest.mark.parametrize("cmd", _commands(), ids=lambda c: " ".join(c) or "fer")
def test_every_command_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([*cmd, "--help"])
    assert e.value.code == 0
    assert "usage: fer" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args,needle",
    [
        (["model", "summary", "--depth", "9"], "depth from 2 to 6"),
        (["train", "--data", "x", "--lr", "-1"], "positive number"),
        (["train", "--data", "x", "--epochs", "zero"], "positive integer"),
        (["frobnicate"], "invalid choice"),
        (["data", "info", "/no/such/place"], "/no/such/place: no such file or folder"),
    ],
)
def test_bad_arguments_exit_nonzero_with_one_line(args, needle, capsys):
    try:
        rc = main(args)
    except SystemExit as e:
        rc = e.code
    err = capsys.readouterr().err.strip()
    assert rc != 0
    assert len(err.splitlines()) == 1 and needle in err
    assert "Traceback" not in err


def test_model_summary_prints_the_parameter_count(capsys):
    assert main(["model", "summary", "--depth", "4"]) == 0
    assert "901,287" in capsys.readouterr().out


def test_data_info_json(report_tree, capsys):
    assert main(["data", "info", str(report_tree), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["layout"] == "report" and rep["totals"] == {"train": 28, "test": 14}
    assert rep["image_sizes"] == {"24x24": 42}


@pytest.mark.parametrize("cmd", [["train"], ["model", "summary"]])
def test_help_shows_every_flag_with_its_default(cmd, capsys):
    """Every option has help text, and every one with a value default shows it."""
    from fer_utils.cli.parser import build_parser

    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices[cmd[0]]
    if len(cmd) > 1:
        sub = sub._subparsers._group_actions[0].choices[cmd[1]]
    with pytest.raises(SystemExit):
        main([*cmd, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for action in sub._actions:
        if action.dest == "help":
            continue
        assert action.help, action.dest
        if action.default not in (None, False):
            assert f"default: {action.default}" in text, action.dest


def test_train_defaults_are_the_reports_base_configuration():
    """lr 0.001, depth 2, batch 64, 50 epochs: Table 1's middle row (the README says so)."""
    from fer_utils.cli.commands import train_config
    from fer_utils.cli.parser import build_parser

    c, epochs = train_config(build_parser().parse_args(["train", "--data", "x"]))
    assert (c.model, c.lr, c.depth, c.batch_size, epochs, c.seed, c.image_size, c.selection, c.augment) == (
        "report_cnn", 0.001, 2, 64, 50, 0, 128, "test", True)
    # --model resnet: the beyond recipe, selected on the holdout; --epochs becomes the recipe's
    c, epochs = train_config(build_parser().parse_args(["train", "--data", "x", "--model", "resnet", "--epochs", "12"]))
    assert (c.model, c.lr, c.batch_size, c.epochs, epochs, c.image_size, c.selection) == ("resnet", 0.002, 128, 12, None, 64, "holdout")
    with pytest.raises(FerError, match="--depth/--no-augment: options of the report's CNN"):
        train_config(build_parser().parse_args(["train", "--data", "x", "--model", "resnet", "--depth", "3"]))


def test_no_start_up_noise(tmp_path):
    """A real `fer model summary` prints the summary and nothing else: no TensorFlow C++ lines."""
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("TF_CPP", "GLOG", "ABSL"))}
    out = fer("model", "summary", "--depth", "2", "--input-size", "32", cwd=tmp_path, env=env)
    assert out.returncode == 0
    assert out.stderr == "", out.stderr
    assert out.stdout.startswith('Model: "report_cnn_depth2"')
    out = fer("train", "--help", cwd=tmp_path, env=env)
    assert out.returncode == 0 and out.stderr == "" and out.stdout.startswith("usage: fer train")


@pytest.mark.slow
def test_train_prints_epochs_and_final_row_and_saves(report_tree, tmp_path, capsys):
    out_model = tmp_path / "m.keras"
    rc = main(["train", "--data", str(report_tree), "--epochs", "2", "--depth", "2", "--batch-size", "8",
               "--image-size", "24", "--run-dir", str(tmp_path / "run"), "--save", str(out_model)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "epoch 1/2" in out and "epoch 2/2" in out
    assert "Loss\tAccuracy\tVal_loss\tVal_accuracy\tDiscrepancy" in out
    from fer_utils.models.registry import load_model

    _, names = load_model(out_model)
    assert names[3] == "Happiness"
    # the same command again trains nothing, and says so before the final row
    rc = main(["train", "--data", str(report_tree), "--epochs", "2", "--depth", "2", "--batch-size", "8",
               "--image-size", "24", "--run-dir", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert rc == 0 and "already has 2 epochs; nothing trained" in out and "epoch 1/2" not in out


FAST_FAILURES = [
    ("evaluate", "{x}/nope.keras", "{x}"),
    ("evaluate", "fer-package", "{x}"),
    ("compare", "{x}/a.keras", "{x}/b.keras", "{x}"),
    ("organize", "{x}/nope", "{x}/out", "--model", "{x}/nope.keras"),
    ("train", "--data", "{x}/nope"),
    ("train", "--data", "{x}", "--model", "resnet", "--depth", "3"),
    ("run", "--profile", "tenth", "--data", "{x}/nope"),
    ("tables", "--profile", "tenth", "--data", "{x}/nope"),
    ("report", "--published", "{x}/nope"),
    ("data", "info", "{x}/nope"),
    ("predict", "{x}/nope.png"),
    ("evaluate", "shipped", "{x}/nope"),
    ("organize", "{x}/nope", "{x}/out"),
    ("export", "shipped", "--format", "onnx", "--out", "{x}/no/m.onnx"),
    ("export", "shipped", "--format", "onnx", "--out", "{x}/m.tflite"),
    ("ship", "some-run", "--test", "RAF-DB test={x}/nope.zip"),
]


@pytest.mark.parametrize("args", FAST_FAILURES, ids=lambda a: " ".join(a[:2]))
def test_a_wrong_path_fails_before_keras_is_imported(tmp_path, args):
    """A user's mistake answers at once: one line, exit 2, and no backend imported (counted, not
    timed: importing Keras and TensorFlow is what takes a minute on a loaded machine)."""
    code = ("import sys; from fer_utils.cli import main; rc = main(sys.argv[1:]); "
            "print('IMPORTED', sorted(m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules), rc)")
    env = dict(__import__("os").environ, FER_HOME=str(tmp_path), FER_PACKAGE_WEIGHTS=str(tmp_path / "absent.hdf5"))
    argv = [a.format(x=tmp_path) for a in args]
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120, env=env)
    assert out.stdout.strip().endswith("IMPORTED [] 2"), (out.stdout, out.stderr)
    assert len(out.stderr.strip().splitlines()) == 1 and out.stderr.startswith("fer: error: "), out.stderr


def test_version():
    from fer_utils import __version__

    out = subprocess.run([sys.executable, "-m", "fer_utils.cli", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"fer {__version__}"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'version = "{__version__}"' in pyproject  # one version: the package's and the distribution's agree


def test_a_closed_stdout_is_one_line(monkeypatch, capsys, tmp_path):
    """`fer runs | head` whose reader stopped: one line naming <stdout>, no traceback."""
    import io

    class Closed(io.StringIO):
        def write(self, s):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setenv("FER_HOME", str(tmp_path))
    monkeypatch.setattr(sys, "stdout", Closed())
    assert main(["runs"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fer: error: <stdout>: closed by its reader") and len(err.strip().splitlines()) == 1


def test_a_full_disk_while_writing_names_the_file(tmp_path, monkeypatch):
    """ENOSPC from the write itself carries no file name; the atomic writer adds it (the CLI's
    one line then says which file, not '?'), and leaves no temporary file behind."""
    import errno
    import os

    from fer_utils import atomic

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as err:
        atomic.atomic_write_text(tmp_path / "out" / "history.csv", "x")
    assert err.value.filename == str(tmp_path / "out" / "history.csv") and err.value.errno == errno.ENOSPC
    assert list((tmp_path / "out").iterdir()) == []
