"""Decode a labelled data set (RAF-DB or the synthetic stand-in) into uint8 arrays, with a cache.

Where the files are is :mod:`fer_utils.data.sources` (a folder or a zip) and which label each gets is
:mod:`fer_utils.data.layouts` (the three RAF-DB layouts, and a plain tree of class folders when one
split is asked for); this module decodes them and keeps the result.

Images are decoded to RGB (grayscale, palette, RGBA, CMYK and 16-bit inputs are converted the
way the legacy Keras loader converted them: ``PIL.Image.convert("RGB")``, which drops alpha),
resized with NEAREST to ``image_size`` (what ``flow_from_directory(target_size=...)`` did, so
RAF-DB's 100x100 crops are upsampled to 128x128), and kept as uint8. Decoded arrays are cached
on disk (:data:`fer_utils.paths.CACHE_DIR`), keyed by the source, its size and modification
times, and the image size, so the second load of full RAF-DB takes seconds.

Two ways in: :func:`load` (both splits, for training; or ``split="test"`` for "the labelled
faces of whatever this is", which a model is evaluated on) and :func:`info` (counts without
decoding, what ``fer data info`` prints).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from fer_utils.errors import DataError
from fer_utils.data.classes import CLASS_ALIASES, CLASS_NAMES, RAF_ID_TO_NAME, canonical_class  # noqa: F401 - re-exported
from fer_utils.data.layouts import (  # noqa: F401 - re-exported: the names every other module imports from here
    LAYOUT_HELP,
    SPLITS,
    SYNTHETIC_MARKER,
    detect,
)
from fer_utils.progress import progress_bar
from fer_utils.data.sources import IMAGE_SUFFIXES, Source, ignored_path  # noqa: F401 - re-exported

DEFAULT_IMAGE_SIZE = 128
CACHE_VERSION = 2  # 2: one-split loads and the plain class-folder tree


# --------------------------------------------------------------------------------------------
# Decoding


def decode_image(data: bytes, image_size: int | None = DEFAULT_IMAGE_SIZE, name: str = "<bytes>",
                 channels: int = 3) -> np.ndarray:
    """Decode image bytes to a uint8 array of shape (S, S, channels), resized with NEAREST.

    Any mode PIL reads (L, LA, P, RGBA, CMYK, I;16, ...) is converted with ``convert("RGB")``,
    as the legacy Keras loader did; ``channels=1`` then takes PIL's luminance (``convert("L")``)
    for a model with one input channel. ``image_size=None`` keeps the native size. Raises
    :class:`DataError` naming ``name`` when the bytes are not a readable image, or would
    decompress to more pixels than PIL's decompression-bomb limit. The message is the same on
    every run (no memory addresses), so it can go into a file.
    """
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise DataError(f"{name}: empty file (0 bytes); expected an image. Re-copy or remove it")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            if img.mode == "I;16" or img.mode.startswith("I;16") or img.mode in ("I", "F"):
                arr = np.asarray(img, dtype=np.float64)
                hi = arr.max() or 1.0
                img = Image.fromarray((arr * (255.0 / (65535.0 if hi > 255 else 255.0))).clip(0, 255).astype(np.uint8))
            if img.mode != "RGB":
                img = img.convert("RGB")
            if channels == 1:
                img = img.convert("L")
            if image_size is not None and img.size != (image_size, image_size):
                img = img.resize((image_size, image_size), Image.NEAREST)
            arr = np.asarray(img, dtype=np.uint8).copy()
            return arr[..., None] if channels == 1 else arr
    except Image.DecompressionBombError as exc:
        raise DataError(
            f"{name}: image too large to decode safely ({str(exc).split(' could be')[0].rstrip(',')}); expected a face "
            f"crop of at most a few megapixels. Remove the file, or shrink it"
        ) from None
    except UnidentifiedImageError:
        raise DataError(
            f"{name}: not an image PIL recognises (UnidentifiedImageError); expected a JPEG, PNG or other "
            f"image. Re-copy the file or remove it"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DataError(
            f"{name}: cannot decode image ({type(exc).__name__}: {exc}); expected a JPEG, PNG or "
            f"other image PIL reads. Re-copy the file or remove it"
        ) from None


def to_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """RGB uint8 images (N, S, S, 3) as a model with ``channels`` inputs wants them: unchanged
    for 3, PIL's luminance ``L = (299 R + 587 G + 114 B) / 1000`` for 1 (what
    :func:`decode_image` with ``channels=1`` gives).

    >>> to_channels(np.full((1, 2, 2, 3), 200, np.uint8), 1).shape
    (1, 2, 2, 1)
    """
    if channels == 3:
        return x
    if channels != 1:
        raise DataError(f"a model with {channels} input channels: expected 1 (grayscale) or 3 (RGB)")
    w = np.array([299, 587, 114], dtype=np.uint32)
    return (((x.astype(np.uint32) * w).sum(axis=-1) + 500) // 1000).astype(np.uint8)[..., None]


def _decode_many(source: Source, rels: list[str], image_size: int, on_error: str, progress: bool):
    out = np.zeros((len(rels), image_size, image_size, 3), dtype=np.uint8)
    ok = np.ones(len(rels), dtype=bool)
    failures: list[str] = []

    def read(i):
        try:
            return source.read(rels[i])
        except OSError as exc:  # a symlink to itself, a bad CRC, no permission
            return f"{source.display(rels[i])}: cannot read ({exc.strerror or exc}); expected a readable image. Replace or remove it"

    # Zip members are read in the main thread (ZipFile is not thread safe for reads); folder
    # reads and decodes overlap in threads (PIL releases the GIL while decoding).
    def decode(i, data):
        if isinstance(data, str):
            return data
        try:
            out[i] = decode_image(data, image_size, source.display(rels[i]))
            return None
        except DataError as exc:
            return str(exc)

    bar = progress_bar(len(rels), "decode", progress and len(rels) >= 500)
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        futures = []
        for i in range(len(rels)):
            if source.is_zip:
                futures.append(pool.submit(decode, i, read(i)))
            else:
                futures.append(pool.submit(lambda i=i: decode(i, read(i))))
        for i, fut in enumerate(futures):
            err = fut.result()
            bar.update(1)
            if err:
                if on_error == "raise":
                    bar.close()
                    for f in futures:
                        f.cancel()
                    raise DataError(err)
                ok[i] = False
                failures.append(err)
    bar.close()
    return out, ok, failures


# --------------------------------------------------------------------------------------------
# The public loader


@dataclass
class Dataset:
    """Decoded images and labels, with where they came from.

    ``x_*`` are uint8 arrays (N, S, S, 3); ``y_*`` int64 class indices into ``class_names``
    (always the 7 of :data:`CLASS_NAMES`, present or not). A one-split load
    (``load(..., split="test")``) has ``splits == ("test",)`` and empty ``x_train``/``y_train``.
    ``problems`` lists what was reported and left out (a ``contempt`` folder, repeated label
    lines, ...).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    names_train: list[str]
    names_test: list[str]
    class_names: tuple[str, ...]
    layout: str
    source: str
    image_size: int
    fingerprint: str
    synthetic: bool = False
    problems: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    load_seconds: float = 0.0
    from_cache: bool = False
    splits: tuple[str, ...] = SPLITS
    #: A mixture of several sets (:mod:`fer_utils.data.mixture`): each face's set, and the sets' names.
    source_train: np.ndarray | None = None
    source_test: np.ndarray | None = None
    source_names: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def counts(self) -> dict[str, dict[str, int]]:
        return {
            split: {c: int((y == i).sum()) for i, c in enumerate(self.class_names)}
            for split, y in (("train", self.y_train), ("test", self.y_test)) if split in self.splits
        }

    def describe(self) -> str:
        kind = "SYNTHETIC stand-in (not RAF-DB)" if self.synthetic else "real data"
        sizes = " + ".join(f"{len(getattr(self, 'y_' + s))} {s}" for s in self.splits)
        return (
            f"{self.source} [{self.layout} layout, {kind}]: {sizes} at {self.image_size}x{self.image_size}, "
            + (f"fingerprint {self.fingerprint[:12]}" if self.fingerprint else "not decoded yet (no fingerprint)")
        )


def load(
    path,
    image_size: int = DEFAULT_IMAGE_SIZE,
    *,
    split: str | None = None,
    cache: bool = True,
    on_error: str = "raise",
    progress: bool = True,
    verbose: bool = True,
) -> Dataset:
    """Load a data set from a folder or a zip.

    Parameters
    ----------
    path : folder or .zip
        Any of the three RAF-DB layouts (the report's ``class/`` folder itself, or a folder
        above it); with ``split``, also a plain tree of ``<Class>/`` folders (aliases such as
        ``happy`` or ``angry`` accepted, with or without a ``train/``/``test/`` level).
    image_size : int
        Side of the square the images are resized to (NEAREST), 128 as in the report.
    split : {None, "train", "test"}
        None: both splits, every class (training). "test": only the labelled faces to evaluate a
        model on (``x_test``, ``y_test``); folders that are not one of the 7 classes (e.g.
        ``contempt``) are left out and listed in ``Dataset.problems``; missing classes are fine.
    cache : bool
        Reuse (and write) decoded arrays under :data:`fer_utils.paths.CACHE_DIR`.
    on_error : {"raise", "skip"}
        What to do with a file that cannot be decoded: fail naming it, or skip it and list it
        in ``Dataset.skipped`` (and say so). Never silently.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if int(image_size) < 8:
        raise DataError(f"image_size {image_size}: expected 8 or more pixels")
    t0 = time.perf_counter()
    source = Source(path, what="RAF-DB (or a synthetic set made by 'fer synth')")
    splits = SPLITS if split is None else (split,)
    try:
        cache_dir = cache_dir_of(source, image_size, on_error, split)
        if cache and (cache_dir / "meta.json").exists():
            ds = _read_cache(cache_dir)
            if ds is not None:
                ds.load_seconds = time.perf_counter() - t0
                if verbose:
                    print(f"Loaded {ds.describe()} from cache in {ds.load_seconds:.1f}s")
                return ds
        scan = detect(source, split)
        if verbose:
            print(f"Found the {scan.layout} layout in {source.path}" + (f" (under {scan.base})" if scan.base else ""))
            for p in scan.problems[:10]:
                print(f"  note: {p}")
            if len(scan.problems) > 10:
                print(f"  ... and {len(scan.problems) - 10} more notes (Dataset.problems)")
        arrays, names, skipped = {}, {}, []
        for sp in SPLITS:
            ents = sorted((e for e in scan.entries if e.split == sp), key=lambda e: (PurePosixPath(e.rel).name, e.rel))
            x, ok, failures = _decode_many(source, [e.rel for e in ents], image_size, on_error, progress)
            skipped += failures
            y = np.array([CLASS_NAMES.index(e.label) for e in ents], dtype=np.int64)
            arrays[sp] = (x[ok], y[ok])
            names[sp] = [e.rel for e, k in zip(ents, ok) if k]
        if skipped and verbose:
            print(f"Skipped {len(skipped)} undecodable files (on_error='skip'):")
            for s in skipped[:20]:
                print("  " + s)
        ds = Dataset(
            x_train=arrays["train"][0], y_train=arrays["train"][1],
            x_test=arrays["test"][0], y_test=arrays["test"][1],
            names_train=names["train"], names_test=names["test"],
            class_names=CLASS_NAMES, layout=scan.layout, source=str(source.path),
            image_size=int(image_size), fingerprint="", synthetic=scan.synthetic,
            problems=scan.problems, skipped=skipped, splits=splits,
        )
        ds.fingerprint = fingerprint(ds)
        if cache:
            _write_cache(cache_dir, ds)
        ds.load_seconds = time.perf_counter() - t0
        if verbose:
            print(f"Loaded {ds.describe()} in {ds.load_seconds:.1f}s")
        return ds
    finally:
        source.close()


def cache_dir_of(source: Source, image_size: int, on_error: str = "raise", split: str | None = None) -> Path:
    """The decode cache's folder for this set at this size (it may not exist)."""
    from fer_utils import paths

    key = hashlib.sha1(f"v{CACHE_VERSION}:{source.fingerprint()}:{image_size}:{on_error}:{split}".encode()).hexdigest()[:20]
    return Path(paths.CACHE_DIR) / key


def load_labelled(path, image_size: int = DEFAULT_IMAGE_SIZE, **kwargs) -> Dataset:
    """The labelled faces to evaluate a model on: ``load(path, image_size, split="test")``.

    Reads the test split of any RAF-DB layout, or any ``<Class>/`` folder tree (with a
    ``test/`` level, or without any split level: then every face counts). The faces are in
    ``x_test``/``y_test``; what was left out is in ``problems``.
    """
    return load(path, image_size, split="test", **kwargs)


def fingerprint(ds: Dataset) -> str:
    """Content hash of the decoded arrays and labels: equal data gives an equal fingerprint,
    whichever layout or container it came from."""
    h = hashlib.sha256()
    h.update(",".join(ds.class_names).encode())
    for a in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()


def _write_cache(cache_dir: Path, ds: Dataset) -> None:
    """Best effort: a cache that cannot be written (full disk, read-only) only costs time."""
    tmp = cache_dir.with_name(cache_dir.name + f".tmp{os.getpid()}")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name in ("x_train", "y_train", "x_test", "y_test"):
            np.save(tmp / f"{name}.npy", getattr(ds, name))
        meta = {k: getattr(ds, k) for k in ("names_train", "names_test", "class_names", "layout", "source",
                                             "image_size", "fingerprint", "synthetic", "problems", "skipped", "splits")}
        meta["version"] = CACHE_VERSION
        (tmp / "meta.json").write_text(json.dumps(meta))
        os.replace(tmp, cache_dir)
    except OSError as exc:  # another process won the race (theirs is as good as ours), or no space
        if not cache_dir.exists():
            print(f"note: decoded arrays not cached in {cache_dir.parent} ({exc.strerror or exc}); the next load decodes again")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _read_cache(cache_dir: Path, mmap_mode=None) -> Dataset | None:
    try:
        meta = json.loads((cache_dir / "meta.json").read_text())
        if meta.get("version") != CACHE_VERSION:
            return None
        arrays = {n: np.load(cache_dir / f"{n}.npy", mmap_mode=mmap_mode) for n in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, ValueError, KeyError):
        return None
    meta.pop("version")
    meta["class_names"] = tuple(meta["class_names"])
    meta["splits"] = tuple(meta["splits"])
    return Dataset(**arrays, **meta, from_cache=True)


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held_out): ``fraction`` of every class, at least one, chosen by ``seed``.

    >>> keep, val = stratified_split(np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1]), 0.25, seed=0)
    >>> sorted(np.bincount(np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])[val]).tolist())
    [1, 2]
    """
    rng = np.random.default_rng([int(seed), 0x5A11])
    held = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        n = int(round(len(idx) * fraction))
        n = min(max(n, 1), len(idx) - 1) if len(idx) > 1 else 0
        held.append(rng.permutation(idx)[:n])
    held_out = np.sort(np.concatenate(held)) if held else np.array([], dtype=np.int64)
    keep = np.setdiff1d(np.arange(len(y)), held_out)
    return keep, held_out
