"""The ``fer`` command: a thin layer over the library (every command calls the function the
notebooks call). Errors of ours print one line and exit 2; no tracebacks for bad input."""

from __future__ import annotations

import argparse
import json
import sys

from .errors import FerError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


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


def _seeds(s):
    try:
        return tuple(int(x) for x in s.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 0,1,2, got {s!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="fer", description="Facial expression recognition on RAF-DB: the course report's study, reproducible.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    data = sub.add_parser("data", help="inspect a data set")
    dsub = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    info = dsub.add_parser("info", help="layout, counts per split and class, image sizes, problems")
    info.add_argument("path", help="RAF-DB (any of the three layouts) or a synthetic set: folder or .zip")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.add_argument("--no-sizes", action="store_true", help="do not open images to read their sizes (faster)")

    model = sub.add_parser("model", help="the report's CNN")
    msub = model.add_subparsers(dest="model_command", required=True, parser_class=_Parser)
    summ = msub.add_parser("summary", help="layers and parameter count")
    summ.add_argument("--depth", type=_depth, default=2, help="total conv layers, 2..6 (default 2)")
    summ.add_argument("--input-size", type=_positive_int, default=128, help="input side in pixels (default 128)")

    tr = sub.add_parser("train", help="train one configuration (one line per epoch)")
    tr.add_argument("--data", required=True, help="data set folder or .zip")
    tr.add_argument("--lr", type=_positive_float, default=0.001, help="Adam learning rate (default 0.001)")
    tr.add_argument("--epochs", type=_positive_int, default=10)
    tr.add_argument("--depth", type=_depth, default=2)
    tr.add_argument("--batch-size", type=_positive_int, default=64)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--image-size", type=_positive_int, default=128)
    tr.add_argument("--selection", choices=("test", "holdout"), default="test",
                    help="validate on the test split (the report) or on a held-out part of train")
    tr.add_argument("--no-augment", action="store_true", help="switch off the report's shear/zoom/flip")
    tr.add_argument("--save", metavar="FILE.keras", help="save the trained model (carries its class names)")
    tr.add_argument("--run-dir", help="where the run lives (default: the run store, results/runs/<id>)")

    syn = sub.add_parser("synth", help="generate the synthetic stand-in data set")
    syn.add_argument("--out", required=True, help="output folder (created; never overwrites foreign files)")
    syn.add_argument("--n-train", type=_positive_int, default=1500, help="default 1500 (the demo profile)")
    syn.add_argument("--n-test", type=_positive_int, default=500)
    syn.add_argument("--n-unlabelled", type=int, default=300, help="faces for the sorting step (no labels in their paths)")
    syn.add_argument("--seed", type=int, default=0)

    run = sub.add_parser("run", help="run the experiment notebooks through papermill")
    run.add_argument("--profile", default="demo", help="full, demo or smoke (default demo)")
    run.add_argument("--data", default=None, help="data set (default: the profile's; demo/smoke make the synthetic set)")
    run.add_argument("--seeds", type=_seeds, default=None, help="comma-separated seeds (default: the profile's)")
    run.add_argument("--selection", choices=("test", "holdout"), default="test")
    run.add_argument("--chain", choices=("report", "selected"), default="report",
                     help="later tables use the report's choices (default) or the earlier tables' results")
    run.add_argument("--plan", action="store_true", help="list what would be trained, train nothing")
    run.add_argument("--json", action="store_true", help="with --plan: print JSON")
    run.add_argument("--notebooks", default=None, help="comma-separated notebook names to run (default: all)")

    rep = sub.add_parser("report", help="export the report notebook to results/report.html and .pdf")
    rep.add_argument("--profile", default="demo")
    rep.add_argument("--show-code", action="store_true", help="keep code cells in the HTML")

    org = sub.add_parser("organize", help="sort unlabelled faces into one folder per emotion")
    org.add_argument("input", help="folder or .zip of faces (never modified)")
    org.add_argument("output", help="output folder (<Emotion>/ copies, predictions.csv, errors.csv)")
    src = org.add_mutually_exclusive_group()
    src.add_argument("--model", help="a .keras file saved by 'fer train --save'")
    src.add_argument("--run", help="a run id in results/runs (default: the report's chosen configuration)")
    org.add_argument("--min-confidence", type=float, default=None, help="below it, faces go to _uncertain/")
    org.add_argument("--batch-size", type=_positive_int, default=256)
    org.add_argument("--detect-faces", action="store_true", help="crop faces with OpenCV's Haar cascade first")

    sub.add_parser("runs", help="list the run store")
    return p


def main(argv=None) -> int:
    from . import backend

    backend.quiet()
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args) or 0
    except FerError as exc:
        print(f"fer: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fer: interrupted; finished epochs are kept, run the same command again to resume", file=sys.stderr)
        return 130


def _dispatch(args) -> int | None:
    cmd = args.command
    if cmd == "data":
        return _data_info(args)
    if cmd == "model":
        from .model import build_model, summary_text

        m = build_model(args.depth, args.input_size)
        print(summary_text(m))
        print(f"Parameters: {m.count_params():,} (depth {args.depth}, {args.input_size}x{args.input_size})")
        return 0
    if cmd == "train":
        return _train(args)
    if cmd == "synth":
        from .synthetic import generate

        summary = generate(args.out, n_train=args.n_train, n_test=args.n_test, n_unlabelled=args.n_unlabelled, seed=args.seed)
        print(json.dumps(summary, indent=2, default=str))
        return 0
    if cmd == "run":
        from .experiments import run_cli

        return run_cli(args)
    if cmd == "report":
        from .report import export_report

        export_report(profile=args.profile, show_code=args.show_code)
        return 0
    if cmd == "organize":
        return _organize(args)
    if cmd == "runs":
        from .runs import RunStore

        for r in RunStore().runs():
            c = r.config
            print(f"{r.id}\tepochs={r.epochs_done}\tlr={c.lr:g}\tdepth={c.depth}\tbatch={c.batch_size}\tseed={c.seed}\t{c.selection}")
        return 0
    raise AssertionError(cmd)  # pragma: no cover


def _data_info(args) -> int:
    from .datasets import info

    rep = info(args.path, read_sizes=not args.no_sizes)
    if args.json:
        print(json.dumps(rep, indent=2))
        return 0
    kind = "SYNTHETIC stand-in" if rep["synthetic"] else "data set"
    print(f"{rep['path']}: {rep['layout']} layout ({kind})" + (f", under {rep['base']}" if rep["base"] else ""))
    names = rep["class_names"]
    print(f"{'class':<12}{'train':>8}{'test':>8}")
    for c in names:
        print(f"{c:<12}{rep['counts']['train'][c]:>8}{rep['counts']['test'][c]:>8}")
    print(f"{'total':<12}{rep['totals']['train']:>8}{rep['totals']['test']:>8}")
    if rep["image_sizes"]:
        print("image sizes: " + ", ".join(f"{k} ({v})" for k, v in sorted(rep["image_sizes"].items(), key=lambda kv: -kv[1])))
        print("image modes: " + ", ".join(f"{k} ({v})" for k, v in sorted(rep["image_modes"].items(), key=lambda kv: -kv[1])))
    for p in rep["problems"]:
        print(f"problem: {p}")
    return 0


def _train(args) -> int:
    from . import datasets
    from .config import RunConfig
    from .model import save_model
    from .runs import RunStore
    from .train import print_final, train_run

    ds = datasets.load(args.data, image_size=args.image_size)
    cfg = RunConfig(
        data=ds.fingerprint, lr=args.lr, depth=args.depth, batch_size=args.batch_size, seed=args.seed,
        image_size=args.image_size, augment=not args.no_augment, selection=args.selection,
    )
    from pathlib import Path

    run_dir = Path(args.run_dir) if args.run_dir else RunStore().path(cfg)
    rows = train_run(run_dir, cfg, ds, args.epochs)
    from .train import final_row

    print(f"Final row ({args.epochs} epochs, run {run_dir}):")
    print_final(final_row(rows[-1]))
    if args.save:
        import keras

        model = keras.saving.load_model(run_dir / f"model-e{args.epochs:04d}.keras")
        save_model(model, args.save, class_names=ds.class_names)
        print(f"Saved the model to {args.save}")
    return 0


def _organize(args) -> int:
    from .organize import organize

    model = args.model
    if model is None:
        from .runs import RunStore

        if args.run:
            model = RunStore().load(args.run).model_path()
        else:
            from .experiments import default_model_path

            model = default_model_path()
    from .organize import contact_sheets

    summary = organize(args.input, args.output, model, min_confidence=args.min_confidence,
                       batch_size=args.batch_size, detect_faces=args.detect_faces)
    print(summary)
    sheets = contact_sheets(args.output)
    if sheets:
        print(f"Contact sheets ({len(sheets)}): {sheets[0].parent}/organize_<Class>.png")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
