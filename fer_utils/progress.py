"""One progress bar for every long loop (decoding, generating, sorting)."""

from __future__ import annotations


def progress_bar(total: int, desc: str, enabled: bool = True, **kwargs):
    """A text tqdm bar (``tqdm.auto`` would want ipywidgets inside notebooks); a disabled bar
    costs nothing, so callers never branch on ``enabled``."""
    from tqdm import tqdm

    kwargs.setdefault("mininterval", 1.0)
    return tqdm(total=total, desc=desc, unit="img", disable=not enabled, **kwargs)
