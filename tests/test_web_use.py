"""利用 over real HTTP: who may open a document's access copy and original, and that a stored file
that no longer matches the ledger is never handed out (and the refusal is in the chain)."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from ledger.models import Event, MatterRecord, MatterState
from tests.web_support import Console


def _record(world: Path) -> MatterRecord:
    engine = create_engine(f"sqlite:///{world / 'ledger.sqlite'}")
    with Session(engine) as s:
        r = s.scalars(select(MatterRecord).where(MatterRecord.state == MatterState.VERIFIED)
                      .order_by(MatterRecord.id)).first()
        s.expunge_all()
    engine.dispose()
    assert r is not None
    return r


def _events(world: Path, kind: str) -> list[Event]:
    engine = create_engine(f"sqlite:///{world / 'ledger.sqlite'}")
    with Session(engine) as s:
        rows = list(s.scalars(select(Event).where(Event.kind == kind)))
        s.expunge_all()
    engine.dispose()
    return rows


def _links(page: str) -> dict[str, list[str]]:
    return {kind: re.findall(rf'class="{kind}" href="([^"]+)"', page) for kind in ("access", "original")}


def test_only_the_archivist_opens_documents_and_only_pdfs_have_an_access_copy(console: Console) -> None:
    record = _record(console.world)
    with console.signed_in("archie") as c:
        links = _links(c.get(f"/matter/{record.id}").text)
        assert links["access"] and links["original"]
        assert len(links["original"]) >= len(links["access"])
        number = int(links["original"][0].split("/")[4])
        with console.signed_in("audra") as auditor:
            assert not any(_links(auditor.get(f"/matter/{record.id}").text).values())
            assert auditor.get(links["access"][0]).status_code == 403
            assert auditor.get(links["original"][0]).status_code == 403
        with console.client() as anonymous:
            assert anonymous.get(links["original"][0]).status_code == 401
        assert c.get(f"/matter/{record.id}/file/999/original").status_code == 404
        assert c.get("/matter/999999/file/1/access").status_code == 404
        xml = next(n for n in range(1, 20) if c.get(f"/matter/{record.id}/file/{n}/access").status_code == 404)
        assert xml and number >= 1


def test_a_stored_document_changed_behind_the_ledgers_back_is_refused_and_recorded(console: Console) -> None:
    record = _record(console.world)
    with console.signed_in("archie") as c:
        link = _links(c.get(f"/matter/{record.id}").text)["access"][0]
        stored = [p for p in (console.world / "archive" / record.package_key).rglob("*.pdf")]
        good = c.get(link.replace("/access", "/original"))
        assert good.status_code == 200
        target = next(p for p in stored if hashlib.sha256(p.read_bytes()).hexdigest()
                      == hashlib.sha256(good.content).hexdigest())
        kept = target.read_bytes()
        os.chmod(target, stat.S_IWUSR | stat.S_IRUSR)
        target.write_bytes(kept[:-1] + bytes([kept[-1] ^ 1]))
        try:
            before = len(_events(console.world, "document-refused"))
            for url in (link, link.replace("/access", "/original")):
                r = c.get(url)
                assert r.status_code == 409 and "与账本记录的摘要不一致" in r.text
                assert b"%PDF" not in r.content
            assert len(_events(console.world, "document-refused")) == before + 2
        finally:
            target.write_bytes(kept)
            os.chmod(target, 0o444)


def test_the_consoles_events_keep_the_chain_whole(console: Console) -> None:
    """Views, downloads, refusals and sign-in failures are appended to the chain: `audit verify` still
    recomputes every event and finds nothing wrong."""
    from connectors.repositories import open_repository
    from custody.audit_verify import verify_ledger
    from ledger.store import Ledger
    from schemas.config import load_settings
    from tests.web_support import csrf_of

    record = _record(console.world)
    with console.client() as c:  # one failed sign-in, then a view and a download
        token = csrf_of(c.get("/login").text)
        assert c.post("/login", data={"username": "archie", "password": "nope", "csrf": token}).status_code == 401
    with console.signed_in("archie") as c:
        link = _links(c.get(f"/matter/{record.id}").text)["access"][0]
        assert c.get(link).status_code == 200
        assert c.get(link.replace("/access", "/original")).status_code == 200
    settings = load_settings(console.world / "guidang.yaml")
    with Ledger(settings.resolve_url(settings.ledger_url), migrate=False) as ledger:
        result = verify_ledger(ledger, open_repository(settings.repository, base_dir=settings.base_dir))
    assert result.ok, [f.code for f in result.findings]
    wanted = {"sign-in-failed", "document-viewed", "document-downloaded"}
    assert {e.kind for k in wanted for e in _events(console.world, k)} == wanted
