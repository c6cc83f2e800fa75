"""The digests guidang computes, each recipe once (so two layers can never disagree on one).

One streaming pass feeds SM3 and SHA-256 together: every file guidang writes or verifies goes
through here (the packager, both repositories, the fixity audit), which is why it sits in
`schemas/`, below all of them. SM3 comes from hashlib's OpenSSL binding; there is deliberately no
pure-Python fallback (too slow for archive volumes, and a second implementation to trust).

`json_digest` is the one canonical-JSON SHA-256: a matter's content hash, an invalid record's hash,
the ledger's event chain and a record without 办件编号 are all named by it, so two places can never
disagree about what "the same record" means.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

BLOCK_SIZE = 1024 * 1024

@dataclass(frozen=True, slots=True)
class Digests:
    sm3: str
    sha256: str
    size: int


class MultiHasher:
    """Accumulates SM3, SHA-256 and the byte count over chunks as they stream past."""

    def __init__(self) -> None:
        try:
            self._sm3 = hashlib.new("sm3")
        except ValueError as exc:  # OpenSSL built without SM3
            raise RuntimeError("this Python's OpenSSL has no SM3; guidang needs OpenSSL >= 1.1.1 with SM3") from exc
        self._sha256 = hashlib.sha256()
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self._sm3.update(chunk)
        self._sha256.update(chunk)
        self.size += len(chunk)

    def digests(self) -> Digests:
        return Digests(self._sm3.hexdigest(), self._sha256.hexdigest(), self.size)


def iter_file(fh: BinaryIO, block_size: int = BLOCK_SIZE) -> Iterator[bytes]:
    while chunk := fh.read(block_size):
        yield chunk


def digest_chunks(chunks: Iterable[bytes]) -> Digests:
    h = MultiHasher()
    for c in chunks:
        h.update(c)
    return h.digests()


def copy_and_digest(chunks: Iterable[bytes], dest: BinaryIO) -> Digests:
    """Write a stream to `dest` and hash it in the same pass, so the bytes are read exactly once."""
    h = MultiHasher()
    for c in chunks:
        dest.write(c)
        h.update(c)
    return h.digests()


def canonical_json(obj: Any) -> str:
    """Sorted keys, no spaces, UTF-8 text kept as is; values JSON cannot hold become their str()."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def json_digest(obj: Any, *, prefix: str = "") -> str:
    """SHA-256 (hex) of `prefix` + the canonical JSON of `obj`; the prefix chains ledger events."""
    return hashlib.sha256((prefix + canonical_json(obj)).encode("utf-8")).hexdigest()


def sha256_bytes(data: bytes) -> str:
    """SHA-256 (hex) of a small in-memory blob: a completion marker, a batch's member list."""
    return hashlib.sha256(data).hexdigest()
