"""The `fer` command: help everywhere, one-line errors, and the library behind it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fer_utils.cli import main


def fer(*args, **kw):
    return subprocess.run([sys.executable, "-m", "fer_utils.cli", *args], capture_output=True, text=True, timeout=300, **kw)


@pytest.mark.parametrize("cmd", [[], ["data"], ["data", "info"], ["model", "summary"], ["train"], ["synth"], ["run"], ["report"], ["organize"], ["runs"]])
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


def test_train_prints_epochs_and_final_row_and_saves(report_tree, tmp_path, capsys):
    out_model = tmp_path / "m.keras"
    rc = main(["train", "--data", str(report_tree), "--epochs", "2", "--depth", "2", "--batch-size", "8",
               "--image-size", "24", "--run-dir", str(tmp_path / "run"), "--save", str(out_model)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "epoch 1/2" in out and "epoch 2/2" in out
    assert "Loss\tAccuracy\tVal_loss\tVal_accuracy\tDiscrepancy" in out
    from fer_utils.model import load_model

    _, names = load_model(out_model)
    assert names[3] == "Happiness"
