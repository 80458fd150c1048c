"""Model artifacts on disk (pure core, no Django): XGBoost's own JSON format and a sha256.

The registry row keeps the path and the hash; :func:`load_booster` refuses a file whose bytes
do not hash to what the registry recorded, and loads the very bytes it hashed. Never pickle.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

import xgboost as xgb

__all__ = ["save_booster", "load_booster", "sha256_file"]

_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of the file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_booster(model, directory: str | Path, name: str) -> tuple[Path, str]:
    """Save ``model`` (an ``xgboost.Booster`` or a fitted ``XGBClassifier``/``XGBRegressor``) as
    ``directory/<name>.json`` (``Booster.save_model``, XGBoost's JSON format), creating the
    directory. The file is written beside and renamed into place (never half-written).

    Returns ``(path, sha256 hex of the file)``. Raises ``ValueError`` for a name with
    characters outside ``[A-Za-z0-9._-]``.
    """
    if not _NAME.match(name):
        raise ValueError(f"artifact name {name!r} must match [A-Za-z0-9._-]+")
    booster = model if isinstance(model, xgb.Booster) else model.get_booster()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".json", dir=directory)
    os.close(fd)
    try:
        booster.save_model(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path, sha256_file(path)


def load_booster(path: str | Path, sha256: str) -> xgb.Booster:
    """Load a booster saved by :func:`save_booster` after checking its hash.

    Raises ``FileNotFoundError`` (``model artifact not found: <path>``) when the file is missing
    and ``ValueError`` (``model artifact <path> sha256 mismatch: expected <hex>, actual <hex>``)
    when its bytes were changed.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"model artifact not found: {path}") from None
    actual = hashlib.sha256(raw).hexdigest()
    if actual != sha256.lower():
        raise ValueError(f"model artifact {path} sha256 mismatch: expected {sha256}, actual {actual}")
    booster = xgb.Booster()
    booster.load_model(bytearray(raw))
    return booster
