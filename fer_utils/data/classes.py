"""The seven classes: their canonical order (RAF-DB's label ids 1..7), the folder names other
tools use for them, and RAF-DB's ids. Every layout maps labels by NAME onto this order, so
label 0 is Surprise everywhere."""

from __future__ import annotations

from fer_utils.errors import DataError

#: Canonical class order: RAF-DB's label ids 1..7.
CLASS_NAMES: tuple[str, ...] = ("Surprise", "Fear", "Disgust", "Happiness", "Sadness", "Anger", "Neutral")
RAF_ID_TO_NAME = {i + 1: name for i, name in enumerate(CLASS_NAMES)}

#: Folder names other tools use for the same classes (matched case-insensitively).
CLASS_ALIASES = {
    "surprise": "Surprise", "surprised": "Surprise",
    "fear": "Fear", "fearful": "Fear", "scared": "Fear",
    "disgust": "Disgust", "disgusted": "Disgust",
    "happiness": "Happiness", "happy": "Happiness", "joy": "Happiness",
    "sadness": "Sadness", "sad": "Sadness",
    "anger": "Anger", "angry": "Anger",
    "neutral": "Neutral",
}


def canonical_class(name: str) -> str | None:
    """Map a folder or label name onto :data:`CLASS_NAMES`, or None.

    >>> canonical_class("happy"), canonical_class("Neutral"), canonical_class("cat")
    ('Happiness', 'Neutral', None)
    """
    return CLASS_ALIASES.get(name.strip().lower())


def raf_label(raw: str, where: str) -> str:
    """RAF-DB's label id ``raw`` (1..7, as text) as a class name; ``where`` names the file and line."""
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value not in RAF_ID_TO_NAME:
        raise DataError(
            f"{where}: label {raw!r} is out of range; expected an integer 1..7 "
            f"(1 Surprise, 2 Fear, 3 Disgust, 4 Happiness, 5 Sadness, 6 Anger, 7 Neutral). "
            f"Fix the label"
        )
    return RAF_ID_TO_NAME[value]
