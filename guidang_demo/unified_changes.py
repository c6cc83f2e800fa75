"""The unified simulator's data changed while it runs: what a test does to the source between nights.

补充材料 (a document attached later, `add_document`), a corrected record (`update_matter`), and a
matter that turns up *behind the watermark* (`add_matter`: completed and updated in a window a
night already read, which only reconciliation against the source's own count can find). Each
change takes the simulator's lock, so it lands between two requests, never inside one.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from guidang_demo.unified_data import FILES_DIR, SHANGHAI

_GROUPS = {"申报": "申报", "申报材料": "申报", "过程": "过程", "过程材料": "过程", "结果": "结果", "结果材料": "结果"}


class DataChanges:
    """Mixed into `UnifiedSimulator`, whose state (records, files, lock) it changes."""

    data_dir: Path
    _lock: threading.Lock
    _matters: dict[str, dict[str, Any]]
    _files: dict[str, str]
    _extra_files: dict[str, bytes]
    _changed: int

    def _bump(self, record: dict[str, Any], at: datetime | None) -> str:
        if at is None:
            latest = max(datetime.fromisoformat(m["UPDATETIME"]) for m in self._matters.values())
            at = max(datetime.now(SHANGHAI), latest + timedelta(seconds=1))
        elif at.tzinfo is None:
            at = at.replace(tzinfo=SHANGHAI)
        record["UPDATETIME"] = at.astimezone(SHANGHAI).replace(microsecond=0).isoformat()
        return record["UPDATETIME"]

    def update_matter(self, projid: str, *, at: datetime | None = None, **changes: Any) -> str:
        """Change fields of a matter (uppercase names, None deletes) and bump its UPDATETIME, to `at`
        or past every UPDATETIME in the data; return the new UPDATETIME."""
        with self._lock:
            self._changed += 1  # the served windows are computed again
            record = self._matters[projid]
            for k, v in changes.items():
                if v is None:
                    record.pop(k, None)
                else:
                    record[k] = v
            return self._bump(record, at)

    def add_document(
        self,
        projid: str,
        group: str,
        file_name: str,
        data: bytes,
        *,
        title: str | None = None,
        media_type: str = "application/pdf",
        at: datetime | None = None,
    ) -> str:
        """Attach a document (补充材料) to a matter, bump its UPDATETIME; return the new FILEID."""
        if group not in _GROUPS:
            raise ValueError(f"unknown group {group!r} (申报/过程/结果)")
        with self._lock:
            self._changed += 1  # the served windows are computed again
            record = self._matters[projid]
            materials = record.setdefault("MATERIALS", [])
            fid = f"{projid}-{len(materials) + 1:02d}"
            while fid in self._files:
                fid += "b"
            materials.append({
                "FILEID": fid,
                "GROUP": _GROUPS[group],
                "MATERIALNAME": title or file_name.rsplit(".", 1)[0],
                "FILENAME": file_name,
                "FILETYPE": media_type,
                "FILESIZE": len(data),
                "SHA256": hashlib.sha256(data).hexdigest(),
            })
            self._files[fid] = projid
            self._extra_files[fid] = bytes(data)
            self._bump(record, at)
            return fid

    def add_matter(
        self,
        like: str,
        *,
        finished_at: datetime,
        updated_at: datetime | None = None,
        projid: str | None = None,
        **changes: Any,
    ) -> str:
        """Add a completed matter modelled on `like`, 办结 at `finished_at`; return its PROJID.

        For a matter that turns up at the source *behind the watermark* (a late 补录 with an old
        UPDATETIME): every time of the copy (RECEIVETIME … UPDATETIME, its PROCESS steps) moves by
        the same amount, so it stays in order, and its UPDATETIME is `updated_at` when given. Its
        documents are copies of `like`'s under new FILEIDs (a file `like` lacks stays missing), so
        the matter can be archived like any other. `changes` set fields (uppercase; None deletes).
        """
        with self._lock:
            self._changed += 1  # the served windows are computed again
            record = copy.deepcopy(self._matters[like])
            finished = finished_at if finished_at.tzinfo else finished_at.replace(tzinfo=SHANGHAI)
            delta = finished - datetime.fromisoformat(record["FINISHTIME"])
            _shift_times(record, delta)
            for step in record.get("PROCESS") or []:
                _shift_times(step, delta)
            if projid is None:
                n = 900001
                while (projid := f"330106{finished.astimezone(SHANGHAI):%Y%m%d}{n:06d}") in self._matters:
                    n += 1
            elif projid in self._matters:
                raise ValueError(f"PROJID {projid} is already in the data")
            record["PROJID"] = projid
            for i, mat in enumerate(record.get("MATERIALS") or [], 1):
                old, fid = mat["FILEID"], f"{projid}-{i:02d}"
                mat["FILEID"] = fid
                data = self._extra_files.get(old)
                path = self.data_dir / FILES_DIR / f"{old}.pdf"
                if data is None and path.is_file():
                    data = path.read_bytes()
                if data is not None:
                    self._extra_files[fid] = data
                self._files[fid] = projid
            for k, v in changes.items():
                if v is None:
                    record.pop(k, None)
                else:
                    record[k] = v
            if updated_at is not None:
                self._bump(record, updated_at)
            self._matters[projid] = record
            return projid


def _shift_times(record: dict[str, Any], delta: timedelta) -> None:
    """Move every ISO time of a record (fields named …TIME) by `delta`, keeping their offsets."""
    for key, value in record.items():
        if key.endswith("TIME") and isinstance(value, str):
            try:
                record[key] = (datetime.fromisoformat(value) + delta).isoformat()
            except ValueError:
                continue
