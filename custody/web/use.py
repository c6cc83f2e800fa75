"""利用: opening a record's documents from its 档案 page.

Two copies of each document the ledger's `verified` event lists (the package's own files, numbered in
that list's order, which never changes):
- 利用件 (access copy, PDFs): the original read from the repository into a temporary file with its
  SM3 and SHA-256 checked against the ledger, then stamped (custody/access_copy.py) and sent inline;
- 原件 (original): streamed from the repository byte for byte, never whole in memory. Its digests are
  checked against the ledger in a first pass before a byte is sent, and again on the way out: a copy
  that changed in between is cut off, so the client never gets a complete file that differs.
Each is role-gated (auth.PAGE_ROLES "use" and "original") and each view or download is an event in
the chain (`document-viewed`, `document-downloaded`: who, which document, which copy, when), shown on
the 审计 page and by `guidang audit log`. Nothing in the archive is ever written.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path as FsPath
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from custody.web.auth import Session
from custody.web.guard import require
from schemas.digest import MultiHasher
from schemas.web_config import ROLE_LABELS

router = APIRouter()
ACCESS_COPY_LIMIT = 512 * 1024 * 1024  # a PDF larger than this is offered as its original only
COPY_LABELS = {"access": "利用件", "original": "原件"}
MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class Document:
    record: Any  # ledger.models.MatterRecord
    key: str  # the object's key in the repository
    path: str  # its path in the package
    size: int
    sha256: str
    sm3: str


class ChangedOnTheWayOut(Exception):
    """The stored bytes differed from the ledger's digests while they were being sent."""


def ledger_documents(events: Any) -> list[dict[str, Any]]:
    """The files of the matter's last `verified` event, in the event's order: what the 档案 page numbers."""
    files: list[dict[str, Any]] = []
    for e in events:
        if e.kind == "verified":
            files = [f for f in (e.payload or {}).get("files", []) if isinstance(f, dict) and f.get("path")]
    return files


def _document(request: Request, matter_id: int, number: int) -> Document:
    from custody.web import page_queries as queries
    from ledger.models import MatterRecord, MatterState

    with request.app.state.ledger.read() as s:
        record = s.get(MatterRecord, matter_id)
        if record is not None and record.state == MatterState.DESTROYED:
            raise HTTPException(410, f"档案 {record.archival_code} 已按鉴定审批销毁，文件已不在存储库中"
                                     "（元数据、检测报告和销毁记录仍在其档案页）")
        if record is None or record.state != MatterState.VERIFIED or not record.package_key:
            raise HTTPException(404, "没有这件已归档的档案")
        files = ledger_documents(queries.matter_events(s, record))
        s.expunge_all()
    if not 1 <= number <= len(files):
        raise HTTPException(404, f"档案 {record.archival_code} 没有第 {number} 个文件")
    f = files[number - 1]
    return Document(record, f"{record.package_key.rstrip('/')}/{f['path']}", str(f["path"]), int(f.get("size") or 0),
                    str(f.get("sha256") or ""), str(f.get("sm3") or ""))


def _check(request: Request, doc: Document, chunks: Iterator[bytes], out: Any = None) -> None:
    """Read the stored object through, compare with the ledger; 409 when it differs or cannot be read."""
    from connectors.repositories.base import RepositoryError

    h = MultiHasher()
    try:
        for chunk in chunks:
            h.update(chunk)
            if out is not None:
                out.write(chunk)
    except RepositoryError as exc:
        raise HTTPException(409, f"{doc.path}：存储库中无法读取（{exc}）") from exc
    d = h.digests()
    if (d.size, d.sha256, d.sm3) != (doc.size, doc.sha256, doc.sm3):
        _event(request, "document-refused", doc, "original", found={"size": d.size, "sha256": d.sha256,
                                                                    "sm3": d.sm3})
        raise HTTPException(409, f"{doc.path}：存储库中的文件与账本记录的摘要不一致，不予提供（已记入审计）")


def _event(request: Request, kind: str, doc: Document, copy: str, **extra: Any) -> None:
    from ledger.chain import append_event

    session: Session = request.state.session
    r = doc.record
    with request.app.state.ledger.transaction() as s:
        append_event(s, kind, source=r.source, project_id=r.project_id, archival_code=r.archival_code,
                     payload={"user": session.username, "role": session.role, "path": doc.path,
                              "copy": COPY_LABELS[copy], "sm3": doc.sm3, **extra})


def _disposition(kind: str, name: str) -> str:
    return f"{kind}; filename*=UTF-8''{quote(name)}"


@router.get("/matter/{matter_id}/file/{number}/original")
def original(request: Request, matter_id: Annotated[int, Path(ge=1, le=MAX_ID)],
             number: Annotated[int, Path(ge=1, le=100_000)],
             session: Annotated[Session, Depends(require("original", download=True))]) -> Response:
    repository = request.app.state.repository
    doc = _document(request, matter_id, number)
    _check(request, doc, repository.open(doc.key))
    _event(request, "document-downloaded", doc, "original")

    def stream() -> Iterator[bytes]:
        h = MultiHasher()
        for chunk in repository.open(doc.key):
            h.update(chunk)
            yield chunk
        d = h.digests()
        if (d.size, d.sha256, d.sm3) != (doc.size, doc.sha256, doc.sm3):
            raise ChangedOnTheWayOut(doc.key)  # the connection is cut: the client sees a short file

    return StreamingResponse(stream(), media_type="application/octet-stream", headers={
        "Content-Disposition": _disposition("attachment", FsPath(doc.path).name),
        "Content-Length": str(doc.size), "X-Content-SM3": doc.sm3})


@router.get("/matter/{matter_id}/file/{number}/access")
def access_copy(request: Request, matter_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                number: Annotated[int, Path(ge=1, le=100_000)],
                session: Annotated[Session, Depends(require("use", download=True))]) -> Response:
    from custody.access_copy import AccessCopyError, ArchiveStamp, make_access_copy

    doc = _document(request, matter_id, number)
    if not doc.path.lower().endswith(".pdf"):
        raise HTTPException(404, f"{doc.path}：只有 PDF 文件有利用件，请下载原件")
    if doc.size > ACCESS_COPY_LIMIT:
        raise HTTPException(413, f"{doc.path}：文件过大，不生成利用件，请下载原件")
    r = doc.record
    zone = request.app.state.settings.zone
    now = request.app.state.clock.now().astimezone(zone)
    watermark = (f"利用人 {session.username}（{ROLE_LABELS.get(session.role, session.role)}） "
                 f"{now:%Y-%m-%d %H:%M:%S} 仅供查阅")
    stamp = ArchiveStamp(fonds=r.fonds or "", year=str(r.year or ""), item=f"{r.item_number or 0:04d}",
                         org=r.org_code or "", period=r.retention_period or "", pages=str(r.page_count or ""))
    folder = tempfile.mkdtemp(prefix="guidang-use-")
    original_copy, stamped = FsPath(folder, "original.pdf"), FsPath(folder, "access.pdf")
    try:
        with original_copy.open("wb") as fh:
            _check(request, doc, request.app.state.repository.open(doc.key), out=fh)
        make_access_copy(original_copy, stamped, stamp, watermark)
    except AccessCopyError as exc:
        _remove(folder)
        raise HTTPException(422, str(exc)) from exc
    except BaseException:
        _remove(folder)
        raise
    _event(request, "document-viewed", doc, "access", watermark=watermark, at=_iso(now))
    return StreamingResponse(_file_blocks(stamped, folder), media_type="application/pdf", headers={
        "Content-Disposition": _disposition("inline", "利用件-" + FsPath(doc.path).name),
        "Content-Length": str(stamped.stat().st_size)}, background=BackgroundTask(_remove, folder))


def _file_blocks(path: FsPath, folder: str) -> Iterator[bytes]:
    with path.open("rb") as fh:
        _remove(folder)  # gone from the disk once open, whether or not the client reads to the end
        while block := fh.read(1024 * 1024):
            yield block


def _remove(folder: str) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
