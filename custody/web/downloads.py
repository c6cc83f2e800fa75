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
CATALOGUE_LIMIT = 64 * 1024 * 1024  # a 目录文件.xml of a few thousand entries is a few MB
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


def _register(request: Request, session: Session, fmt: str, *, night: date | None = None,
              batch: str | None = None) -> bytes:
    from custody.register_gather import NothingToRegister, build_register
    from packager.register import write_html, write_xlsx

    if fmt not in ("xlsx", "html"):
        raise HTTPException(404)
    app = request.app.state
    try:
        data = build_register(app.ledger, app.repository, app.settings, night=night, batch=batch,
                              masked=not app.sessions.sees_personal_data(session))
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
    data = _register(request, session, fmt, night=night)
    return _attachment(data, f"移交与接收登记表-{night.isoformat()}.{fmt}", fmt)


@router.get("/downloads/register/batch/{batch_id}.{fmt}")
def batch_register(request: Request, batch_id: str, fmt: str,
                   session: Annotated[Session, Depends(require("downloads", download=True))]) -> Response:
    return _attachment(_register(request, session, fmt, batch=batch_id), f"移交与接收登记表-{batch_id}.{fmt}", fmt)


@router.get("/downloads/catalogue/{batch_id}.xml")
def batch_catalogue(request: Request, batch_id: str,
                    session: Annotated[Session, Depends(require("downloads", download=True))]) -> Response:
    """The batch's 目录文件.xml exactly as stored for a role that sees personal data; for any other role
    with every text masked as the pages mask it (persons' names, ID numbers, phones). The repository
    refuses a key that would escape and a symbolic link."""
    from connectors.repositories.base import RepositoryError
    from custody.web.package_view import read_bounded as _read
    from packager.transfer import CATALOGUE_FILE
    from schemas.layout import transfer_key

    with request.app.state.ledger.read() as s:
        known = dict(page_queries.batches(s))
        names = page_queries.batch_names(s, batch_id) if batch_id in known else []
    if batch_id not in known:
        raise HTTPException(404, f"没有批次 {batch_id}")
    key = f"{transfer_key(batch_id)}/{CATALOGUE_FILE}"
    try:
        data = _read(request.app.state.repository, key, limit=CATALOGUE_LIMIT)
    except RepositoryError as exc:
        raise HTTPException(404, f"{key}: {exc}") from exc
    if not request.app.state.sessions.sees_personal_data(session):
        data = masked_xml(data, names)
    return _attachment(data, f"目录文件-{batch_id}.xml", "xml")


def masked_xml(data: bytes, names: list[str]) -> bytes:
    """Every text and attribute value of an XML document masked (schemas.personal.mask_personal)."""
    from lxml import etree

    from schemas.personal import mask_personal
    from schemas.xmlio import parse_xml

    tree = parse_xml(data)
    for el in tree.iter():
        if not isinstance(el.tag, str):
            continue
        if el.text:
            el.text = mask_personal(el.text, names)
        if el.tail:
            el.tail = mask_personal(el.tail, names)
        for k, v in el.attrib.items():
            el.set(k, mask_personal(v, names))
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")
