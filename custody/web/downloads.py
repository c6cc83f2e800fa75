"""下载: a night's or a batch's 移交与接收登记表 (the same HTML/XLSX as `guidang audit register`), and a
batch's 目录文件.xml as the repository stores it. Every download is role-checked (401 without a
session, 403 for a role without `downloads`), built in a temporary folder and sent as bytes."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from custody.web import page_queries
from custody.web.auth import Session
from custody.web.guard import require

router = APIRouter()
MEDIA = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         "html": "text/html; charset=utf-8", "xml": "application/xml"}


def _attachment(data: bytes, name: str, fmt: str) -> Response:
    return Response(data, media_type=MEDIA[fmt],
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"})


@router.get("/downloads")
def downloads(request: Request, session: Annotated[Session, Depends(require("downloads"))]) -> Response:
    with request.app.state.ledger.read() as s:
        nights = page_queries.nights_with_packages(s, request.app.state.settings.zone)
        batches = page_queries.batches(s)
    return request.app.state.templates.TemplateResponse(
        request, "downloads.html", {"session": session, "nights": nights, "batches": batches})


def _register(request: Request, fmt: str, *, night: date | None = None, batch: str | None = None) -> bytes:
    from custody.register_gather import NothingToRegister, build_register
    from packager.register import write_html, write_xlsx

    if fmt not in ("xlsx", "html"):
        raise HTTPException(404)
    app = request.app.state
    try:
        data = build_register(app.ledger, app.repository, app.settings, night=night, batch=batch)
    except NothingToRegister as exc:
        raise HTTPException(404, str(exc)) from exc
    with tempfile.TemporaryDirectory(prefix="guidang-web-") as tmp:
        out = Path(tmp) / f"register.{fmt}"
        (write_xlsx if fmt == "xlsx" else write_html)(data, out)
        return out.read_bytes()


@router.get("/downloads/register/night/{day}.{fmt}")
def night_register(request: Request, day: str, fmt: str,
                   session: Annotated[Session, Depends(require("downloads", download=True))]) -> Response:
    try:
        night = date.fromisoformat(day)
    except ValueError:
        raise HTTPException(404, f"{day!r} 不是日期") from None
    return _attachment(_register(request, fmt, night=night), f"移交与接收登记表-{night.isoformat()}.{fmt}", fmt)


@router.get("/downloads/register/batch/{batch_id}.{fmt}")
def batch_register(request: Request, batch_id: str, fmt: str,
                   session: Annotated[Session, Depends(require("downloads", download=True))]) -> Response:
    return _attachment(_register(request, fmt, batch=batch_id), f"移交与接收登记表-{batch_id}.{fmt}", fmt)


@router.get("/downloads/catalogue/{batch_id}.xml")
def batch_catalogue(request: Request, batch_id: str,
                    session: Annotated[Session, Depends(require("downloads", download=True))]) -> Response:
    """The batch's 目录文件.xml exactly as stored (the repository refuses a key that would escape)."""
    from connectors.repositories.base import RepositoryError
    from packager.transfer import CATALOGUE_FILE
    from schemas.layout import transfer_key

    with request.app.state.ledger.read() as s:
        known = dict(page_queries.batches(s))
    if batch_id not in known:
        raise HTTPException(404, f"没有批次 {batch_id}")
    key = f"{transfer_key(batch_id)}/{CATALOGUE_FILE}"
    try:
        data = b"".join(request.app.state.repository.open(key))
    except RepositoryError as exc:
        raise HTTPException(404, f"{key}: {exc}") from exc
    return _attachment(data, f"目录文件-{batch_id}.xml", "xml")
