"""Writing files so that a crash never leaves a half-written one behind.

Every output is written to a temporary file beside its final path and renamed into place only
once complete (``os.replace`` is atomic on POSIX within one file system).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np

# A fixed timestamp for zip members, so the same arrays give byte-identical .npz files.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    First deletes what a killed writer of the same path left behind (one job writes a given path).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(final)
    fd, tmp_path = create_temporary(final.parent, f".{final.name}.")
    os.close(fd)
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def create_temporary(folder: Path, prefix: str) -> tuple[int, Path]:
    """A new, uniquely named ``<prefix><random>.part`` file in ``folder``, open for writing: (fd, path).

    Created with mode 0o666 less the process umask, as ``open`` would (``tempfile.mkstemp`` makes
    owner-only files), without reading or changing the umask.
    """
    for _ in range(100):
        path = Path(folder) / f"{prefix}{secrets.token_hex(6)}.part"
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {folder}")


def remove_stale_parts(final: Path) -> None:
    """Delete temporary files a killed writer of ``final`` left behind (only one job writes a given path)."""
    for stale in final.parent.glob(f".{final.name}.*.part"):
        stale.unlink(missing_ok=True)


def write_bytes_via(staging: Path, path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file in ``staging`` (same file system), then rename it onto ``path``.

    For folders that several jobs write at once (the cutout cache): each job stages in a folder of
    its own, so cleaning up after a killed job never touches another job's half-written files.
    """
    fd, tmp = create_temporary(staging, f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike, obj: object) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_csv_atomic(path: str | os.PathLike, frame) -> None:
    """Write a pandas DataFrame as CSV (no index), atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_npy_atomic(path: str | os.PathLike, array: np.ndarray) -> None:
    """``np.save`` through a temporary file renamed into place: a crash leaves no half-written array."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.lib.format.write_array(f, np.ascontiguousarray(array), allow_pickle=False)


def write_npz_atomic(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Write an uncompressed .npz that ``np.load`` reads, byte-identical for identical arrays.

    ``np.savez`` stamps each zip member with the current time; this writer uses a fixed one.
    """
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, array in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
                info.external_attr = 0o644 << 16
                with zf.open(info, "w", force_zip64=True) as member:  # streamed: no second copy in memory
                    np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
