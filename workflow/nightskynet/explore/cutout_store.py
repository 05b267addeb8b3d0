"""A run's cutouts by objid, straight from its chunk tars: where each ``<objid>.jpg`` member lies, found once per tar.

A galaxy's chunk is known from its objid (``chunks.chunk_of``), so the first request for a galaxy reads the headers
of its own tar only (a few hundred milliseconds for the 28,000 members of one of 32 chunks of Galaxy Zoo 1); a
background thread reads the others' meanwhile. A request names an objid, never a file.
"""

from __future__ import annotations

import re
import tarfile
import threading
from pathlib import Path

from ..core.chunks import chunk_of


class CutoutStore:
    def __init__(self, tar_paths: list[Path]):
        self.tars: dict[int, Path] = {}
        for path in tar_paths:
            match = re.search(r"chunk_(\d+)\.tar$", path.name)
            if match:
                self.tars[int(match.group(1))] = path
        self.numbered = sorted(self.tars) == list(range(len(self.tars)))
        self._where: dict[int, tuple[Path, int, int]] = {}
        self._indexed: set[int] = set()
        self._lock = threading.Lock()

    def start_indexing(self) -> threading.Thread:
        """Read every tar's headers in a background thread (a request for a galaxy of an unread tar reads that one first)."""
        thread = threading.Thread(target=lambda: [self._index(k) for k in sorted(self.tars)], name="cutout-index", daemon=True)
        thread.start()
        return thread

    def _index(self, chunk: int) -> None:
        with self._lock:
            if chunk in self._indexed:
                return
            found = {}
            with tarfile.open(self.tars[chunk]) as tar:
                for member in tar:
                    stem = member.name.rsplit("/", 1)[-1].removesuffix(".jpg")
                    if member.isfile() and stem.isdigit():
                        found[int(stem)] = (self.tars[chunk], member.offset_data, member.size)
            self._where.update(found)
            self._indexed.add(chunk)

    def jpeg(self, objid: int) -> bytes | None:
        """The cutout of ``objid`` as the scrape downloaded it, or None when the run has none."""
        if objid not in self._where:
            chunks = [chunk_of(objid, len(self.tars))] if self.numbered and self.tars else sorted(self.tars)
            for chunk in chunks:
                if chunk in self.tars:
                    self._index(chunk)
        where = self._where.get(objid)
        if where is None:
            return None
        path, offset, size = where
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(size)
