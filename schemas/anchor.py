"""The checkpoint document and the checkpoint line of a DA/T 93 batch (ledger/anchors.py uses them).

Here, below the ledger and the packager, because both write it: the ledger's checkpoint objects
under `checkpoints/` and the batch's 说明文件 and 登记表 carry the same four facts, and `audit verify`
reads them all back with the parsers below.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

CHECKPOINT_PREFIX = "checkpoints"
FORMAT = "guidang-ledger-checkpoint/1"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One anchor: the ledger's event `seq` had hash `hash` at `at` (UTC ISO), written by `run_id`."""

    seq: int
    hash: str
    at: str
    run_id: str | None
    where: str = ""  # the repository key or batch file it was read from (not part of the document)

    def label(self) -> str:
        return f"checkpoint {self.where or self.seq} (event {self.seq}, {self.at}, run {self.run_id or '-'})"


def checkpoint_key(seq: int, run_id: str | None) -> str:
    """`checkpoints/<seq, 12 digits>-<run>.json`: sorted by seq in any listing, never reused."""
    return f"{CHECKPOINT_PREFIX}/{seq:012d}-{run_id or 'none'}.json"


def checkpoint_bytes(cp: Checkpoint) -> bytes:
    body = {"format": FORMAT, "seq": cp.seq, "hash": cp.hash, "at": cp.at, "run_id": cp.run_id}
    return (json.dumps(body, ensure_ascii=False, sort_keys=True, indent=1) + "\n").encode("utf-8")


def parse_checkpoint(where: str, data: bytes) -> Checkpoint:
    """A stored checkpoint document; ValueError naming `where` when it is not one."""
    try:
        body = json.loads(data.decode("utf-8"))
        if body.get("format") != FORMAT:
            raise ValueError(f"format {body.get('format')!r}, expected {FORMAT!r}")
        seq, digest = body["seq"], body["hash"]
        if not isinstance(seq, int) or not re.fullmatch(r"[0-9a-f]{64}", str(digest)):
            raise ValueError("seq must be an integer and hash 64 hex digits")
        return Checkpoint(seq, digest, str(body.get("at", "")), body.get("run_id"), where=where)
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, AttributeError) as exc:
        raise ValueError(f"{where}: not a checkpoint document ({exc.__class__.__name__}: {exc})") from exc
    except ValueError as exc:
        raise ValueError(f"{where}: not a checkpoint document ({exc})") from exc


# The line a batch's 说明文件 carries, and how it is read back (the 登记表 carries the same facts).
README_LINE = "账本检查点：事件 {seq}，摘要 {hash}，时间 {at}，运行 {run}"
_README_RE = re.compile(r"账本检查点：事件 (\d+)，摘要 ([0-9a-f]{64})，时间 (\S+)，运行 (\S+)")


def readme_line(cp: Checkpoint) -> str:
    return README_LINE.format(seq=cp.seq, hash=cp.hash, at=cp.at, run=cp.run_id or "-")


def parse_readme(where: str, text: str) -> Checkpoint | None:
    m = _README_RE.search(text)
    if m is None:
        return None
    run = None if m.group(4) == "-" else m.group(4)
    return Checkpoint(int(m.group(1)), m.group(2), m.group(3), run, where=where)
