"""Which chunk a galaxy belongs to: the scrape stage's jobs and the morphology stage's jobs deal galaxies alike."""

from __future__ import annotations

import hashlib


def chunk_of(objid: int, chunks: int) -> int:
    """A stable chunk number for ``objid`` (independent of Python's hash seed and of the catalog)."""
    digest = hashlib.blake2b(str(int(objid)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % chunks
