"""A person's marks on a run's galaxies: yes (one of the kind they look for) or no, with when they were made.

Kept in one ECSV file of the run (``layout.MARKS``: columns ``objid``, ``mark``, ``time``), the one file the
explorer writes. The whole file is written again, atomically (a temporary file renamed into place, after
``fsync``), at every mark, under a lock, so marks from two tabs at once are both kept and a server killed in the
middle of a write leaves the previous file whole; it is read back at start.
"""

from __future__ import annotations

import datetime
import os
import threading
from pathlib import Path

import numpy as np

from ..core.errors import InputError
from ..core.files import atomic_path

MARKS = ("yes", "no")


class Marks:
    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self.marks: dict[int, tuple[str, str]] = {}  # objid -> (mark, time)
        if path.exists():
            self.marks = read_marks(path)

    def set(self, objid: int, mark: str | None) -> None:
        """Mark ``objid`` yes or no (None: take its mark back), and write the file."""
        if mark is not None and mark not in MARKS:
            raise ValueError(f"mark {mark!r}: yes, no, or clear")
        with self._lock:
            if mark is None:
                self.marks.pop(objid, None)
            else:
                self.marks[objid] = (mark, datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
            write_marks(self.path, self.marks)

    def snapshot(self) -> dict[int, str]:
        """objid -> mark, as they stand."""
        with self._lock:
            return {objid: mark for objid, (mark, _) in self.marks.items()}


def write_marks(path: Path, marks: dict[int, tuple[str, str]]) -> None:
    from astropy.table import Table

    table = Table(
        {
            "objid": np.array(list(marks), dtype=np.int64),
            "mark": np.array([m for m, _ in marks.values()], dtype="U3"),
            "time": np.array([t for _, t in marks.values()], dtype="U32"),
        }
    )
    table["objid"].description = "SDSS objID of the marked galaxy"
    table["mark"].description = "yes: one of the kind looked for; no: not one"
    table["time"].description = "when it was marked (UTC, ISO 8601)"
    with atomic_path(path) as tmp:
        table.write(tmp, format="ascii.ecsv", overwrite=True)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())


def read_marks(path: Path) -> dict[int, tuple[str, str]]:
    from astropy.table import Table

    try:
        table = Table.read(path, format="ascii.ecsv")
    except Exception as err:  # astropy raises many kinds for a file that is not ECSV
        raise InputError(f"{path}: not a marks file the explorer wrote ({err}); move it away to start without marks") from None
    if not {"objid", "mark", "time"} <= set(table.colnames):
        raise InputError(f"{path}: a marks file needs the columns objid, mark, time; move it away to start without marks")
    out = {}
    for objid, mark, time in zip(table["objid"], table["mark"], table["time"], strict=True):
        if str(mark) not in MARKS:
            raise InputError(f"{path}: objid {objid} has the mark {mark!r}, not yes or no")
        out[int(objid)] = (str(mark), str(time))
    return out
