"""fer_utils.study.published: export the small files of a study, refuse images, rebuild the tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_fer

from fer_utils.study import published
from fer_utils.study.profiles import get_profile
from fer_utils.training.config import RunConfig
from fer_utils.errors import FerError

TRAINED_WITH = {"backend": "jax", "device": "NVIDIA H100 80GB HBM3", "keras": "3.x"}


def _results(root: Path, seeds=(0, 1), image_in_metrics=False) -> Path:
    """A results folder as a study leaves it (Table 1 of the smoke profile, holdout), by hand."""
    prof = get_profile("smoke")
    rows = []
    for seed in seeds:
        for i, lr in enumerate(prof.lr_grid):
            cfg = RunConfig(data="f" * 64, lr=lr, seed=seed, image_size=32, selection="holdout")
            d = root / "runs" / cfg.run_id
            d.mkdir(parents=True)
            (d / "config.json").write_text(json.dumps(cfg.to_dict()))
            acc = 0.5 + 0.1 * i + 0.01 * seed
            (d / "history.csv").write_text(f"epoch,loss,accuracy,val_loss,val_accuracy,seconds\n1,1.0,{acc},1.1,{acc - 0.02},3.5\n")
            test = {"loss": 1.2, "accuracy": acc - 0.03, "confusion": [[1, 0], [0, 1]], "class_names": ["a", "b"], "n": 2}
            if image_in_metrics:
                test["worst"] = "class/test/Happiness/test_0001.jpg"
            ev = {"final_row": {}, "test": test, "trained_with": TRAINED_WITH}
            (d / "metrics.json").write_text(json.dumps({"run_id": cfg.run_id, "evaluations": {"1": ev}}))
            (d / "checkpoint.keras").write_bytes(b"model weights")  # must NOT be published
            rows.append({"value": lr, "seed": seed, "epochs": 1, "run_id": cfg.run_id})
    man = {"table": 1, "rows": rows, "seeds": list(seeds), "selection": "holdout", "chain": "report",
           "profile": prof.to_dict(), "picks": {"report": 0.0001, "sound": 0.0001},
           "data": {"fingerprint": "f" * 64, "source": "/home/me/private/raf-basic.zip", "layout": "official"}}
    (root / "tables" / "smoke").mkdir(parents=True)
    (root / "tables" / "smoke" / "table1.json").write_text(json.dumps(man))
    return root


def test_publish_copies_numbers_only_and_rebuilds_the_table(tmp_path):
    res = _results(tmp_path / "results")
    dest = tmp_path / "published" / "smoke-holdout"
    index = published.publish(res, dest, "smoke")
    assert index["tables"] == [1] and len(index["runs"]) == 6
    files = sorted(p.name for p in dest.rglob("*") if p.is_file())
    assert set(files) == {"published.json", "table1.json", "config.json", "history.csv", "metrics.json"}
    assert not list(dest.rglob("*.keras"))
    man = json.loads((dest / "tables" / "smoke" / "table1.json").read_text())
    assert man["data"]["source"] == "raf-basic.zip"  # no local path travels
    assert all(r["trained_with"] == [TRAINED_WITH] for r in index["runs"].values())

    md = published.tables_markdown(dest)
    lines = md.splitlines()
    assert lines[0].startswith("**Table 1: Learning Rate Experiment Results** (profile `smoke`, selection `holdout`, 2 seeds 0, 1; trained with jax on NVIDIA H100")
    assert lines[2] == "| Learning Rate | report Val_acc | Accuracy | Val_accuracy | Discrepancy | Test_accuracy | picked |"
    assert lines[4] == "| 0.01 | 0.3862 | 0.5050 ± 0.0071 | 0.4850 ± 0.0071 | 0.0200 ± 0.0000 | 0.4750 ± 0.0071 |  |"
    assert lines[6].endswith("| report's rule, held-out rule |")
    assert published.as_results_dir(dest) == dest and published.profile_of(dest) == "smoke"

    again = published.publish(res, dest, "smoke")  # an earlier publication is updated in place
    assert again == index


def test_publish_refuses_images_foreign_folders_and_missing_tables(tmp_path):
    with pytest.raises(FerError, match="names image files"):
        published.publish(_results(tmp_path / "r1", image_in_metrics=True), tmp_path / "p1", "smoke")
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(FerError, match="not an earlier publication"):
        published.publish(_results(tmp_path / "r2"), foreign, "smoke")
    assert (foreign / "notes.txt").read_text() == "keep me" and len(list(foreign.iterdir())) == 1
    with pytest.raises(FerError, match="no table manifests"):
        published.publish(tmp_path / "r2", tmp_path / "p3", "full")
    with pytest.raises(FerError, match="not a published folder"):
        published.tables_markdown(tmp_path / "r2")


def test_publishing_more_tables_keeps_the_earlier_ones(tmp_path):
    """A study published a table at a time (Table 1 now, Table 3 when it has run) ends with one
    index that lists every table and run; a table of another study is refused, nothing written."""
    res = _results(tmp_path / "results")
    dest = tmp_path / "published" / "smoke-holdout"
    first = published.publish(res, dest, "smoke")
    man = json.loads((res / "tables" / "smoke" / "table1.json").read_text())
    man3 = dict(man, table=3, rows=[dict(man["rows"][0], value=3)])
    (res / "tables" / "smoke" / "table3.json").write_text(json.dumps(man3))
    (res / "tables" / "smoke" / "table1.json").unlink()
    both = published.publish(res, dest, "smoke", tables=(3,))
    assert both["tables"] == [1, 3] and both["runs"] == first["runs"]
    assert (dest / "tables" / "smoke" / "table1.json").exists() and (dest / "tables" / "smoke" / "table3.json").exists()
    assert [line for line in published.tables_markdown(dest).splitlines() if line.startswith("**Table")][1].startswith("**Table 3")

    other = dict(man3, selection="test")
    (res / "tables" / "smoke" / "table3.json").write_text(json.dumps(other))
    before = sorted(p.read_bytes() for p in dest.rglob("*") if p.is_file())
    with pytest.raises(FerError, match="published selection 'holdout', but table 3 has 'test'"):
        published.publish(res, dest, "smoke", tables=(3,))
    assert sorted(p.read_bytes() for p in dest.rglob("*") if p.is_file()) == before


def test_a_table_published_again_must_keep_its_seeds(tmp_path):
    """Seeds 1 and 2 of a table trained in a fresh store make a manifest without seed 0: publishing
    it over the seed-0 table would drop seed 0's rows, so it is refused, nothing written; a store
    that holds all the seeds (the published runs copied in) publishes, and the table has them all."""
    dest = tmp_path / "published" / "smoke-holdout"
    published.publish(_results(tmp_path / "r0", seeds=(0,)), dest, "smoke")
    before = sorted(p.read_bytes() for p in dest.rglob("*") if p.is_file())
    with pytest.raises(FerError, match=r"table 1 there has 3 row\(s\) the new one lacks \(seeds 0\); publishing would drop them. Train seeds 0,1,2"):
        published.publish(_results(tmp_path / "r12", seeds=(1, 2)), dest, "smoke")
    assert sorted(p.read_bytes() for p in dest.rglob("*") if p.is_file()) == before
    index = published.publish(_results(tmp_path / "r012", seeds=(0, 1, 2)), dest, "smoke")
    assert index["seeds"] == [0, 1, 2] and len(index["runs"]) == 9
    assert "3 seeds 0, 1, 2" in published.tables_markdown(dest).splitlines()[0]


def test_a_run_trained_further_elsewhere_merges_into_its_publication(tmp_path):
    """Table 1 published a run at 1 epoch; Table 2 continued the same run to 2 epochs on another
    machine (the seconds differ). Publishing it keeps the longer history and BOTH kept epochs'
    evaluations; a run whose epochs differ from the published ones is refused, nothing written."""
    res = _results(tmp_path / "results", seeds=(0,))
    dest = tmp_path / "published" / "smoke-holdout"
    published.publish(res, dest, "smoke")
    rid = json.loads((res / "tables" / "smoke" / "table1.json").read_text())["rows"][0]["run_id"]
    run = res / "runs" / rid
    first = (run / "history.csv").read_text().splitlines()
    (run / "history.csv").write_text("\n".join([first[0], first[1].replace(",3.5", ",9.25"), "2,0.9,0.7,1.0,0.6,4.0"]) + "\n")
    m = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps(dict(m, evaluations={"2": m["evaluations"]["1"]})))
    index = published.publish(res, dest, "smoke")
    assert index["runs"][rid]["epochs"] == 2 and index["runs"][rid]["kept_epochs"] == [1, 2]
    assert (dest / "runs" / rid / "history.csv").read_text() == (run / "history.csv").read_text()
    assert sorted(json.loads((dest / "runs" / rid / "metrics.json").read_text())["evaluations"]) == ["1", "2"]

    (run / "history.csv").write_text(first[0] + "\n1,1.0,0.55,1.1,0.5,3.5\n")  # another training
    before = sorted(p.read_bytes() for p in dest.rglob("*") if p.is_file())
    with pytest.raises(FerError, match="epoch 1 differs from the published run's"):
        published.publish(res, dest, "smoke")
    assert sorted(p.read_bytes() for p in dest.rglob("*") if p.is_file()) == before


def test_the_claims_table_of_a_published_folder_checks_only_what_it_holds(tmp_path):
    dest = tmp_path / "published" / "smoke-holdout"
    published.publish(_results(tmp_path / "results"), dest, "smoke")
    md = published.claims_markdown(dest).splitlines()
    assert md[0] == "| # | claim | ours (`smoke-holdout`) | on the report's own numbers |" and len(md) == 2 + 13
    # Table 1 is here (lr 0.0001 has the best validation accuracy in these runs): claim 1 is
    # checked and fails; Table 3 is not here: claim 8 is not testable
    assert md[2].startswith("| 1 | A learning rate of 0.001 gives the best validation accuracy. | not supported |")
    assert "| 8 | A network depth of 4 gives the best validation accuracy. | not testable here |" in md[9]
    assert published.markdown(dest).startswith(published.tables_markdown(dest))
    out = run_fer("report", "--published", str(dest), "--markdown", home=tmp_path / "home", timeout=120)
    assert out.returncode == 0 and out.stdout == published.markdown(dest), out.stderr
    assert not (tmp_path / "home").exists() or not any((tmp_path / "home").rglob("*.html"))  # exports nothing


def test_fer_publish_extends_a_publication_and_says_how_to_rebuild_it(tmp_path):
    """`fer publish` is publish() from the command line: Table 1 now, Table 3 later, one folder."""
    res = _results(tmp_path / "results")
    dest = tmp_path / "published" / "smoke-holdout"
    out = run_fer("publish", str(dest), "--profile", "smoke", "--results", str(res), home=tmp_path / "home", timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"rebuild them with: fer report --published {dest} --profile smoke --markdown" in out.stdout
    assert "tables 1 of profile smoke (6 runs, seeds 0, 1, selection holdout)" in out.stdout
    assert f"the tables per seed: {dest / published.FIGURE}" in out.stdout
    one_table = json.loads((dest / published.INDEX).read_text())["figure"]["numbers"]
    man = json.loads((res / "tables" / "smoke" / "table1.json").read_text())
    (res / "tables" / "smoke" / "table3.json").write_text(json.dumps(dict(man, table=3, rows=[dict(man["rows"][0], value=3)])))
    out = run_fer("publish", str(dest), "--profile", "smoke", "--results", str(res), "--tables", "3",
                  home=tmp_path / "home", timeout=120)
    assert out.returncode == 0, out.stderr
    assert published.profile_of(dest) == "smoke"
    index = json.loads((dest / published.INDEX).read_text())
    assert index["tables"] == [1, 3]
    assert index["figure"]["numbers"] != one_table  # redrawn with Table 3
    assert index["figure"]["numbers"] == published.figure_digest(published_results(dest))
    assert not (tmp_path / "home").exists() or not any((tmp_path / "home").rglob("*"))  # wrote nowhere else


def published_results(dest):
    from fer_utils.study.tables import load_results

    return load_results(published.profile_of(dest), results_dir=dest)


def test_the_figure_shows_every_seed_and_the_pick(tmp_path):
    """tables_by_seed: one panel per table, one dot per (value, seed), the rule's pick under its
    tick, the test accuracy under holdout; and the digest moves when a number does."""
    from fer_utils.study import figures

    dest = tmp_path / "pub"
    published.publish(_results(tmp_path / "results"), dest, "smoke")
    results = published_results(dest)
    fig = figures.tables_by_seed(results)
    (ax,) = fig.axes
    dots = [y for c in ax.collections if c.get_gid() == "per seed" for _, y in c.get_offsets()]
    assert sorted(dots) == sorted(results[1].per_seed["Val_accuracy"]) and len(dots) == 6  # 3 lr x 2 seeds
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert [t.endswith("picked") for t in ticks] == [float(v) == 0.0001 for v in results[1].mean.index]
    assert ax.get_title() == "Table 1 (2 seeds: 0, 1)"
    assert "test (mean ± std)" in ax.get_legend_handles_labels()[1]
    before = published.figure_digest(results)
    run = next((dest / "runs").iterdir())
    hist = run / "history.csv"
    hist.write_text(hist.read_text().replace("\n1,1.0,", "\n1,0.9,"))  # one run's loss
    assert published.figure_digest(published_results(dest)) != before


def _publications():
    from fer_utils import paths

    return sorted(p.parent.name for p in (paths.PROJECT_DIR / "published").glob("*/" + published.INDEX))


@pytest.mark.parametrize("name", _publications())
def test_the_results_page_quotes_the_published_tables_as_they_rebuild(name):
    """Every line of `fer report --published published/<name> --markdown` (the tables and the
    claims table) stands in docs/results.md: its real-data numbers are rebuilt, not typed."""
    from fer_utils import paths

    page = (paths.PROJECT_DIR / "docs" / "results.md").read_text()
    missing = [line for line in published.markdown(paths.PROJECT_DIR / "published" / name).splitlines()
               if line.strip() and line not in page]
    assert not missing, f"docs/results.md lacks {len(missing)} line(s) of published/{name}'s tables, e.g. {missing[0]!r}"


@pytest.mark.parametrize("name", _publications())
def test_the_published_figure_is_drawn_from_the_published_numbers(name):
    """published/<name>/tables.png exists, docs/results.md shows it, and the index says it was drawn
    from the folder's current numbers (redraw: fer report --published DIR --figure)."""
    from fer_utils import paths

    d = paths.PROJECT_DIR / "published" / name
    index = json.loads((d / published.INDEX).read_text())
    assert (d / published.FIGURE).is_file() and index.get("figure", {}).get("file") == published.FIGURE
    assert index["figure"]["numbers"] == published.figure_digest(published_results(d)), \
        f"published/{name}/tables.png shows other numbers; redraw it: fer report --published published/{name} --figure"
    assert f"(../published/{name}/{published.FIGURE})" in (paths.PROJECT_DIR / "docs" / "results.md").read_text()


def test_the_project_has_a_publication_for_the_readme_to_quote():
    assert "tenth-test-cpu" in _publications()


KILL_SCRIPT = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
import fer_utils.atomic as atomic
import fer_utils.study.published as published
where, n = sys.argv[1], int(sys.argv[2])
calls = {{"n": 0}}

def killing(real):
    def wrapped(*a, **k):
        calls["n"] += 1
        if calls["n"] == n:
            os.kill(os.getpid(), signal.SIGKILL)  # what kill -9 does, at a known instant
        return real(*a, **k)
    return wrapped

if where == "write":  # the n-th file written into the staging copy
    published.atomic_write_bytes = killing(published.atomic_write_bytes)
elif where == "index":  # the n-th JSON written (manifest, then the index)
    published.atomic_write_json = killing(published.atomic_write_json)
elif where == "swap":  # between the two renames of the swap
    Path.rename = killing(Path.rename)
published.publish(sys.argv[3], sys.argv[4], "smoke", figure=True)
"""


def _tree(folder: Path) -> dict:
    """Every file under ``folder`` with its bytes (the figure by its presence: PNGs carry no
    numbers of ours, and the index holds the digest of the numbers it was drawn from)."""
    return {str(p.relative_to(folder)): (b"png" if p.suffix == ".png" else p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("where, n", [("write", 2), ("index", 2), ("swap", 2), ("swap", 1)])
def test_a_publish_killed_at_any_instant_is_finished_by_the_same_command(tmp_path, where, n):
    """kill -9 while the run files are written, while the index is written, and between the two
    renames of the swap: the folder is the old one (or the finished new one), never half
    written, and the same command again gives the folder an uninterrupted publish gives."""
    import subprocess
    import sys

    res = _results(tmp_path / "results")
    whole = tmp_path / "whole"
    for _ in range(2 if where == "swap" else 1):  # the uninterrupted command(s)
        published.publish(res, whole, "smoke", figure=True)
    dest = tmp_path / "pub"
    if where == "swap":  # publishing again over an earlier publication: the swap has two renames
        published.publish(res, dest, "smoke", figure=True)
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT.format(tests=str(Path(__file__).parent)))
    out = subprocess.run([sys.executable, str(script), where, str(n), str(res), str(dest)], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == -9, out.stderr[-2000:]
    assert not dest.exists() or (dest / published.INDEX).exists()  # never a folder without its index
    published.publish(res, dest, "smoke", figure=True)  # the same command again
    assert _tree(dest) == _tree(whole)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no staging or old copy left
