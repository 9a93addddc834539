"""Executing and exporting notebooks (fer_utils.study.notebooks): tiny fixture notebooks executed for
real through papermill, the one failure convention, and the HTML export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fer_utils.study import notebooks
from fer_utils.errors import FerError, NotebookError


def write_notebook(path: Path, *cells: str, params: str = "x = 1") -> Path:
    def cell(src, tags=None):
        return {"cell_type": "code", "execution_count": None, "id": f"c{abs(hash(src)) % 10**8}",
                "metadata": {"tags": tags} if tags else {}, "outputs": [], "source": src}

    nb = {"cells": [cell(params, ["parameters"]), *(cell(c) for c in cells)],
          "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))
    return path


def test_parameters_of_reads_the_parameters_cell(tmp_path):
    nb = write_notebook(tmp_path / "p.ipynb", "y = 2", params='profile = "demo"  # comment\nseeds = []\nz: int = 3')
    assert notebooks.parameters_of(nb) == {"profile", "seeds"}


def test_failed_copy_sits_beside_the_good_one(tmp_path):
    assert notebooks.failed_copy(tmp_path / "01_learning_rate.ipynb") == tmp_path / "01_learning_rate.failed.ipynb"


def test_a_missing_notebook_is_a_one_line_error(tmp_path):
    with pytest.raises(FerError, match="no such notebook"):
        notebooks.execute(tmp_path / "nope.ipynb", tmp_path / "out.ipynb")


@pytest.mark.slow
def test_execute_injects_only_declared_parameters(tmp_path):
    nb = write_notebook(tmp_path / "ok.ipynb", "print('x is', x)")
    dest = notebooks.execute(nb, tmp_path / "out" / "ok.ipynb", {"x": 5, "not_a_parameter": 1}, cwd=tmp_path, stream_output=False)
    text = dest.read_text()
    assert "x is 5" in text and "not_a_parameter" not in text
    assert not list((tmp_path / "out").glob("*.failed.ipynb")) and not list((tmp_path / "out").glob(".*"))


@pytest.mark.slow
def test_a_failure_raises_notebook_error_and_keeps_the_good_copy(tmp_path):
    good = write_notebook(tmp_path / "nb.ipynb", "print('fine')")
    dest = notebooks.execute(good, tmp_path / "out" / "nb.ipynb", cwd=tmp_path, stream_output=False)
    before = dest.read_bytes()
    write_notebook(tmp_path / "nb.ipynb", "print('fine')", "raise ValueError('boom\\nsecond line')")
    with pytest.raises(NotebookError) as err:
        notebooks.execute(tmp_path / "nb.ipynb", dest, cwd=tmp_path, stream_output=False)
    exc = err.value
    assert exc.notebook == "nb" and exc.cell == 3 and exc.exit_code == 1
    assert exc.executed == tmp_path / "out" / "nb.failed.ipynb" and "boom" in exc.executed.read_text()
    assert "ValueError: boom;" in str(exc) and "\n" not in str(exc) and str(exc.executed) in str(exc)
    assert dest.read_bytes() == before  # the earlier good executed copy is untouched
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["nb.failed.ipynb", "nb.ipynb"]


@pytest.mark.slow
def test_to_html_is_self_contained_without_code_or_stderr(tmp_path):
    nb = write_notebook(tmp_path / "h.ipynb", "import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)")
    dest = notebooks.execute(nb, tmp_path / "h.out.ipynb", cwd=tmp_path, stream_output=False)
    html = notebooks.to_html(dest, tmp_path / "h.html").read_text()
    assert "to stdout" in html and "to stderr" not in html and "import sys" not in html
    assert "<script src=" not in html and notebooks.REPORT_TITLE in html
    assert (tmp_path / "h.html").stat().st_mode & 0o777 == 0o644
