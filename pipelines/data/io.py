"""File I/O for Stockwise: reading inputs, writing outputs atomically.

Every output goes to a temporary file in the target folder first and is
moved into place with :func:`os.replace`, so a reader never sees a half-written
file, even if the process is killed mid-write.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

__all__ = ["read_table", "write_table_atomic", "write_text_atomic", "atomic_path", "InputFileError"]


class InputFileError(ValueError):
    """An input file is missing, unreadable or of an unknown format."""


@contextmanager
def atomic_path(target: str | Path):
    """Yield a temporary path next to ``target``; move it into place on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide outputs from other users
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_table_atomic(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` as CSV, Parquet or Excel (by suffix) atomically; return the path."""
    path = Path(path)
    writers: dict[str, Callable[[Path], None]] = {
        ".csv": lambda p: df.to_csv(p, index=False),
        ".parquet": lambda p: df.to_parquet(p, index=False),
        ".xlsx": lambda p: df.to_excel(p, index=False),
    }
    if path.suffix not in writers:
        raise ValueError(f"cannot write {path}: use a .csv, .parquet or .xlsx file name")
    with atomic_path(path) as tmp:
        writers[path.suffix](tmp)
    return path


def write_text_atomic(text: str, path: str | Path) -> Path:
    """Write a text file (JSON, HTML, Markdown) atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def read_table(path: str | Path, dtype: dict | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file, with an error naming the file on failure.

    ``unique_id``-like id columns are read as strings so part numbers such as
    ``"00123"`` keep their leading zeros.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: file not found; check the path")
    ids = {c: "string" for c in ("unique_id", "item_id", "location", "stage_id", "upstream", "downstream")}
    try:
        if path.suffix == ".parquet":
            df = pd.read_parquet(path)
            return df.astype({c: "string" for c in ids if c in df.columns} | (dtype or {}))
        if path.suffix in (".csv", ".txt"):
            return pd.read_csv(path, dtype=ids | (dtype or {}), keep_default_na=True)
    except Exception as exc:  # noqa: BLE001 - re-raised with the file name
        raise InputFileError(f"{path}: cannot be read ({exc}); is it a valid {path.suffix} file?") from exc
    raise InputFileError(f"{path}: unknown format {path.suffix!r}; use .csv or .parquet")
