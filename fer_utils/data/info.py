"""What ``fer data info`` prints: a data set described without decoding it (layout, counts per
split and class, image sizes and modes, problems)."""

from __future__ import annotations

import io

from fer_utils.data.classes import CLASS_NAMES
from fer_utils.data.layouts import SPLITS, detect
from fer_utils.data.sources import Source

def _scan(source, split):
    """The layout scan, and the split it describes. With no ``split`` asked for, a training set
    (both splits) is tried first, then what ``fer evaluate`` reads (a test split, or a plain
    tree of class folders with no split at all), then a train split alone."""
    from fer_utils.errors import DataError, NoLayout

    if split is not None:
        return detect(source, split), split
    try:
        return detect(source, None), None
    except NoLayout as first:  # no training layout at all (a fault inside one is reported as it is)
        for one in ("test", "train"):
            try:
                return detect(source, one), one
            except NoLayout:
                continue
        raise DataError(f"{first} (--split test or --split train describes one split alone)") from None


def info(path, *, read_sizes: bool = True, split: str | None = None) -> dict:
    """Describe a data set without decoding it: layout, counts per split and class, sizes.

    ``split`` as in :func:`load`: None for whatever the set holds (both splits of a training
    set, else its one split: a plain class-folder tree reads as ``test``, what a model is
    evaluated on), "test" or "train" for that split alone."""
    source = Source(path, what="RAF-DB (or a synthetic set made by 'fer synth')")
    try:
        scan, split = _scan(source, split)
        splits = SPLITS if split is None else (split,)
        counts = {s: {c: 0 for c in CLASS_NAMES} for s in splits}
        for e in scan.entries:
            counts[e.split][e.label] += 1
        sizes: dict[str, int] = {}
        modes: dict[str, int] = {}
        problems = list(scan.problems)
        if read_sizes:
            from PIL import Image

            for e in scan.entries:
                try:
                    with Image.open(io.BytesIO(source.read(e.rel))) as img:
                        key = f"{img.size[0]}x{img.size[1]}"
                        sizes[key] = sizes.get(key, 0) + 1
                        modes[img.mode] = modes.get(img.mode, 0) + 1
                except Exception as exc:  # noqa: BLE001 - reported, not raised
                    why = "too many pixels, a possible decompression bomb" if "DecompressionBomb" in type(exc).__name__ else type(exc).__name__
                    problems.append(f"{source.display(e.rel)}: cannot read image header ({why}); training would fail on it")
        return {
            "path": str(source.path),
            "layout": scan.layout,
            "base": scan.base,
            "synthetic": scan.synthetic,
            "class_names": list(CLASS_NAMES),
            "counts": counts,
            "totals": {s: sum(counts[s].values()) for s in splits},
            "image_sizes": sizes,
            "image_modes": modes,
            "problems": problems,
        }
    finally:
        source.close()


def format_info(rep: dict) -> str:
    """:func:`info`'s report as ``fer data info`` prints it: layout, a class-by-split count
    table, image sizes and modes, problems."""
    kind = "SYNTHETIC stand-in" if rep["synthetic"] else "data set"
    lines = [f"{rep['path']}: {rep['layout']} layout ({kind})" + (f", under {rep['base']}" if rep["base"] else "")]
    splits = list(rep["counts"])
    lines.append(f"{'class':<12}" + "".join(f"{s:>8}" for s in splits))
    lines += [f"{c:<12}" + "".join(f"{rep['counts'][s][c]:>8}" for s in splits) for c in rep["class_names"]]
    lines.append(f"{'total':<12}" + "".join(f"{rep['totals'][s]:>8}" for s in splits))
    for key in ("image_sizes", "image_modes") if rep["image_sizes"] else ():
        counts = sorted(rep[key].items(), key=lambda kv: -kv[1])
        lines.append(f"{key.replace('_', ' ')}: " + ", ".join(f"{k} ({v})" for k, v in counts))
    lines += [f"problem: {p}" for p in rep["problems"]]
    return "\n".join(lines)


def peek(path, image_size: int):
    """The data set as far as it can be known without decoding or writing anything (``fer run
    --plan``): the decoded arrays' cache when this set was decoded at this size before (mapped,
    not read, so its fingerprint is exact); else the index's labels (``y_train``/``y_test``),
    no pixels, and an empty ``fingerprint``, which no run id can be made from."""
    import numpy as np

    from fer_utils.data.datasets import Dataset, _read_cache, cache_dir_of

    source = Source(path, what="RAF-DB (or a synthetic set made by 'fer synth')")
    try:
        cache_dir = cache_dir_of(source, image_size)
        ds = _read_cache(cache_dir, mmap_mode="r") if (cache_dir / "meta.json").exists() else None
        if ds is not None:
            return ds
        scan = detect(source, None)
        y = {sp: np.array([CLASS_NAMES.index(e.label) for e in scan.entries if e.split == sp], np.int64) for sp in SPLITS}
        empty = np.zeros((0, image_size, image_size, 3), np.uint8)
        return Dataset(x_train=empty, y_train=y["train"], x_test=empty, y_test=y["test"], names_train=[], names_test=[],
                       class_names=CLASS_NAMES, layout=scan.layout, source=str(source.path), image_size=int(image_size),
                       fingerprint="", synthetic=scan.synthetic, problems=scan.problems)
    finally:
        source.close()
