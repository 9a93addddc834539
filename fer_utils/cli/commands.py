"""The ``fer`` command's handlers: each parses nothing and decides nothing, it calls the library
with keyword arguments and prints the result.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fer_utils.errors import FerError


def model_summary(args) -> int:
    from fer_utils.models.report_cnn import build_model, summary_text

    m = build_model(depth=args.depth, input_size=args.input_size)
    print(summary_text(m))
    print(f"Parameters: {m.count_params():,} (depth {args.depth}, {args.input_size}x{args.input_size})")
    return 0


def synth(args) -> int:
    from fer_utils.data.synthetic import generate

    summary = generate(args.out, n_train=args.n_train, n_test=args.n_test, n_unlabelled=args.n_unlabelled, seed=args.seed)
    print(json.dumps(summary, indent=2, default=str))
    return 0


def run(args) -> int:
    from fer_utils.study.pipeline import run_study

    return run_study(profile=args.profile, data=args.data, seeds=args.seeds, selection=args.selection, chain=args.chain,
                     notebooks=args.notebooks, plan_only=args.plan, as_json=args.json, workers=args.workers,
                     scheduler=args.scheduler, gpus=args.gpus, workers_per_gpu=args.workers_per_gpu, threads=args.threads,
                     jit_epochs=args.jit_epochs)


def tables(args) -> int:
    from fer_utils.study.pipeline import run_tables

    return run_tables(profile=args.profile, data=args.data, seeds=args.seeds, selection=args.selection, chain=args.chain,
                      tables=args.tables, workers=args.workers, scheduler=args.scheduler, quiet=args.quiet,
                      gpus=args.gpus, workers_per_gpu=args.workers_per_gpu, threads=args.threads, jit_epochs=args.jit_epochs)


def report(args) -> int:
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


def publish(args) -> int:
    from fer_utils import paths
    from fer_utils.study import published
    from fer_utils.study.pipeline import check_tables

    tables = None if args.tables is None else check_tables(args.tables)
    results = paths.RESULTS_DIR if args.results is None else args.results
    index = published.publish(results, args.dest, args.profile, tables=tables, figure=True)
    figure = Path(args.dest) / published.FIGURE
    print(f"{args.dest}: tables {', '.join(map(str, index['tables']))} of profile {args.profile} "
          f"({len(index['runs'])} runs, seeds {', '.join(map(str, index.get('seeds') or []))}, selection {index.get('selection')})")
    print(f"rebuild them with: fer report --published {args.dest} --profile {args.profile} --markdown")
    print(f"the tables per seed: {figure}")
    return 0


def runs(args) -> int:
    from fer_utils.training.store import RunStore

    def pct(v):
        return "-" if v is None else f"{v:.4f}"

    print("run\tmodel\tdata\tselection\tepochs\tholdout\ttest")
    for r in RunStore().runs(include_corrupt=True):
        if r.problem:
            print(f"{r.id}\tCORRUPT\t{r.problem}")
            continue
        s = r.summary()
        print(f"{s['run_id']}\t{s['model']}\t{s['data'] or '?'} ({s['fingerprint'][:12]})\t{s['selection']}\t{s['epochs']}"
              f"\t{pct(s['holdout_accuracy'])}\t{pct(s['test_accuracy'])}")
    return 0


def evaluate(args) -> int:
    from fer_utils.apply.evaluate import evaluate, format_evaluation, public

    result = evaluate(args.model, args.data, tta=args.tta, view_name=args.view, batch_size=args.batch_size, faces=args.faces)
    print(json.dumps(public(result), indent=2) if args.json else format_evaluation(result))
    return 0


def compare(args) -> int:
    from fer_utils.apply.evaluate import compare, format_comparison, public

    result = compare(args.model_a, args.model_b, args.data, tta=args.tta, view_name=args.view, batch_size=args.batch_size,
                     faces=args.faces)
    print(json.dumps(public(result), indent=2) if args.json else format_comparison(result))
    return 0


def data_info(args) -> int:
    from fer_utils.data.info import format_info, info

    rep = info(args.path, read_sizes=not args.no_sizes, split=args.split)
    print(json.dumps(rep, indent=2) if args.json else format_info(rep))
    return 0


def train_config(args):
    """``fer train``'s configuration (data fingerprint left empty) and epoch count, from its
    flags and the model's defaults: the report's base configuration (Table 1's middle row:
    lr 0.001, depth 2, batch 64, 50 epochs, 128 px, validated on test) for the report's CNN, the
    beyond recipe for resnet (its epochs part of the configuration: ``None`` here)."""
    from fer_utils.models.registry import preset
    from fer_utils.training.config import RunConfig

    model, fields = preset(args.preset) if args.preset else (args.model, {})
    if model != "report_cnn" and (args.depth is not None or args.no_augment):
        raise FerError(f"--depth/--no-augment: options of the report's CNN, not of model {model!r}; leave them out")
    if getattr(args, "mix", None) and len(args.data) < 2:
        raise FerError("--mix: how several data sets share an epoch; give two or more --data, or leave it out")
    given = {"lr": args.lr, "batch_size": args.batch_size, "seed": args.seed, "image_size": args.image_size,
             "selection": args.selection, "depth": args.depth, "augment": False if args.no_augment else None,
             "mix": getattr(args, "mix", None), "epoch_faces": getattr(args, "epoch_faces", None)}
    fields.update({k: v for k, v in given.items() if v is not None})
    epochs = args.epochs
    if model != "report_cnn" and epochs is not None:
        fields["epochs"], epochs = epochs, None  # part of the recipe (its schedule spans it)
    elif model == "report_cnn" and epochs is None:
        epochs = 50  # the report's Table 1
    return RunConfig(data="", model=model, **fields), epochs  # a bad value fails here, before the data loads


def train(args) -> int:
    from fer_utils.atomic import check_writable
    from fer_utils.data.mixture import load_many
    from fer_utils.models.registry import load_model, save_model
    from fer_utils.training.clusters import check_engine
    from fer_utils.training.store import RunStore
    from fer_utils.training.trainer import print_final, target_epochs

    # Arguments and destinations first: nothing is loaded or trained for a command that would fail.
    cfg, epochs = train_config(args)
    engine = check_engine(workers=args.workers, gpus=args.gpus, workers_per_gpu=args.workers_per_gpu, threads=args.threads,
                          scheduler=args.scheduler, jit_epochs=args.jit_epochs)
    planned = args.seeds is not None or set(engine) - {"jit_epochs"}  # several runs, or handed out by the engine
    if planned and args.run_dir:
        raise FerError("--run-dir: one run's folder; with --seeds, --workers, --gpus or --scheduler the runs live in the "
                       "run store (FER_HOME); leave --run-dir out")
    if args.seeds is not None and len(args.seeds) > 1 and args.save:
        raise FerError(f"--save {args.save}: one model's file, and --seeds gives {len(args.seeds)} runs; leave --save out "
                       "(each run's model stays in the run store) or give one seed")
    if args.save:
        check_writable(args.save, suffix=".keras", what="--save")
    seen = {}
    for path in args.data:  # every path before the first one loads
        if not Path(path).exists():
            raise FerError(f"--data {path}: no such file or folder; expected a data set folder or .zip")
        where = Path(path).resolve()
        if where in seen:
            raise FerError(f"--data {path}: the same data set as --data {seen[where]}; give each set once "
                           "(--mix equal weighs the sets, not a set given twice)")
        seen[where] = path
    if args.scheduler:
        from fer_utils.training.clusters import probe

        probe(args.scheduler)  # a scheduler that is not there fails in seconds, before the data loads
    ds = load_many(args.data, image_size=cfg.image_size)
    cfg = cfg.replace(data=ds.fingerprint)
    store = RunStore()
    if planned:
        from fer_utils.training.engine import plan_entry, train_plan

        cfgs = [cfg.replace(seed=s) for s in (args.seeds or (cfg.seed,))]
        entries = [plan_entry(c, target_epochs(c, epochs), store.root) for c in cfgs]
        train_plan({"name": "train", "runs": entries}, data_path=list(args.data), data=ds, store_root=store.root, **engine)
        runs = [(store.load(e["run_id"]), e["epochs"]) for e in entries]
    else:
        epochs = target_epochs(cfg, epochs)
        run = store.ensure(cfg, epochs, ds, keep_epochs=(epochs,), run_dir=args.run_dir, jit_epochs=args.jit_epochs)
        if run.trained_now == 0:
            print(f"run {run.dir} already has {run.epochs_done} epochs; nothing trained")
        runs = [(run, epochs)]
    for run, e in runs:
        print(f"Final row ({e} epochs, run {run.dir}):")
        print_final(run.row(e))
    if args.save:
        run, e = runs[0]
        kept, _ = load_model(run.model_path(e, must_exist=True))
        save_model(kept, args.save, class_names=ds.class_names)
        print(f"Saved the model to {args.save}")
    return 0


def _model_for(spec):
    """(what organize takes, its class names) for a model spec: a Keras model for ours, the
    predictor itself for the fer package's (which preprocesses its faces its own way)."""
    from fer_utils.apply.evaluate import KerasPredictor, canonical, load_predictor

    pred = load_predictor(spec)
    names = tuple(canonical(n) or n for n in pred.class_names)
    return (pred.model if isinstance(pred, KerasPredictor) else pred), names


def organize(args) -> int:
    from fer_utils.apply.choose import named_model, sorted_by_line, write_sorted_by
    from fer_utils.apply.organize import check_paths, organize
    from fer_utils.apply.recognize import describe_spec

    check_paths(args.input, args.output)  # before any model loads
    if args.model:
        choice = describe_spec(args.model)
        model, names = _model_for(args.model)
    elif args.run:
        from fer_utils.training.store import RunStore

        choice = named_model(RunStore().load(args.run).model_path())
        model, names = choice["path"], None
    elif args.profile:
        from fer_utils.study.choice import best_model

        choice = best_model(args.profile)
        model, names = choice["path"], None
    else:
        from fer_utils.study.choice import default_model

        choice = default_model()
        model, names = _model_for("shipped") if choice["kind"] == "shipped" else (choice["path"], None)
    from fer_utils.study.figures import organize_contact_sheets

    summary = organize(args.input, args.output, model, names, min_confidence=args.min_confidence,
                       batch_size=args.batch_size, faces=args.faces)
    write_sorted_by(args.output, choice)
    print(summary)
    print(sorted_by_line(choice))
    sheets = organize_contact_sheets(args.output)
    if sheets:
        print(f"Contact sheets ({len(sheets)}): {sheets[0].parent}/<Class>.png")
    return 0


def predict(args) -> int:
    from fer_utils.apply.recognize import run_predict

    return run_predict(args.images, model=args.model, faces=args.faces, tta=args.tta, as_json=args.json)


def ship(args) -> int:
    from fer_utils.apply.ship import parse_data, parse_tests, ship_run

    tests, data = parse_tests(args.test), parse_data(args.data)  # before anything loads
    card = ship_run(args.run, tests, data=data, dest=args.dest, name=args.name)
    print(card["summary_line"])
    return 0


def export(args) -> int:
    from fer_utils.apply.export import export_model

    out = export_model(args.model, args.format, args.out)
    print(f"exported {args.model} as {args.format}: {out}")
    return 0


def ablate(args) -> int:
    import time

    from fer_utils.data import datasets
    from fer_utils.study.ablation import VARIANTS, check_variants, format_ablation, run_ablation
    from fer_utils.study.beyond import preset_config

    t0 = time.perf_counter()
    variants = check_variants(args.variants if args.variants is not None else list(VARIANTS))  # before the data loads
    base = preset_config(args.preset, "", seed=args.seed).replace(epochs=args.epochs)
    ds = datasets.load(args.data, image_size=base.image_size)
    r = run_ablation(ds, args.out, base, variants)
    print(format_ablation(r))
    best = max(r["variants"], key=lambda n: r["variants"][n]["as-is"]["accuracy"])
    print("RESULT " + json.dumps({"epochs": args.epochs, "seed": args.seed, "best_on_holdout": best, "seconds": round(time.perf_counter() - t0),
                                  **{n: round(v["as-is"]["accuracy"], 4) for n, v in r["variants"].items()}}))
    return 0

