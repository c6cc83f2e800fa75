"""UnifiedConnector against the unified-system simulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from connectors.sources.unified import UnifiedConnector, fetch_catalogue
from guidang_demo.catalogue import DEMO_CATALOGUE
from guidang_demo.unified_simulator import Fault, FaultPlan, UnifiedSimulator, write_unified_dataset
from schemas.config import UnifiedSource
from schemas.digest import BLOCK_SIZE
from schemas.errors import DocumentUnavailable, SourceUnavailable
from schemas.findings import GuidangError
from schemas.layout import is_dangerous_path
from schemas.model import Document, DocumentGroup, InvalidMatter, Matter, mask_id

SINCE = datetime.fromisoformat("2026-11-19T00:00:00+08:00")
UNTIL = datetime.fromisoformat("2026-11-27T00:00:00+08:00")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    d = tmp_path_factory.mktemp("unified")
    return d, write_unified_dataset(d)


def _done(d: Path) -> list[dict]:
    records = json.loads((d / "matters.json").read_text(encoding="utf-8"))
    return sorted((m for m in records if m.get("FINISHTIME")),
                  key=lambda m: (datetime.fromisoformat(m["UPDATETIME"]), m["PROJID"]))


def _clean(d: Path, summary: dict) -> list[str]:
    """PROJIDs of completed matters without a planted defect, oldest first."""
    bad = {p for ids in summary["defects"].values() for p in ids}
    return [m["PROJID"] for m in _done(d) if m["PROJID"] not in bad]


def _config(url: str, **kw: object) -> UnifiedSource:
    base: dict[str, object] = {"name": "unified", "kind": "unified", "base_url": url, "page_size": 25,
                               "timeout_seconds": 2, "retries": 3, "backoff_seconds": 0.01}
    return UnifiedSource.model_validate(base | kw)


@pytest.fixture
def served(dataset: tuple[Path, dict]) -> Iterator[tuple[UnifiedSimulator, UnifiedConnector, dict]]:
    d, summary = dataset
    sim = UnifiedSimulator(d)
    url = sim.start()
    conn = UnifiedConnector(_config(url))
    try:
        yield sim, conn, summary
    finally:
        conn.close()
        sim.stop()


def _read(conn: UnifiedConnector, doc) -> bytes:
    return b"".join(conn.open_document(doc))


def test_pages_through_the_whole_window_in_order(served, dataset) -> None:
    sim, conn, summary = served
    got = list(conn.completed_between(SINCE, UNTIL))
    expected = _done(dataset[0])
    assert [g.project_id for g in got] == [m["PROJID"] for m in expected]
    assert len(got) == summary["completed"] == 180
    assert sim.requests["matters"] == 8  # ceil(180 / 25) pages, no more
    assert all(g.source == "unified" for g in got)
    invalid = {g.project_id for g in got if isinstance(g, InvalidMatter)}
    d = summary["defects"]
    assert invalid == {d["unknown_matter_type"][0], d["missing_field"][0]}

    m = next(g for g in got if isinstance(g, Matter))
    raw = next(r for r in expected if r["PROJID"] == m.project_id)
    assert (m.service_code, m.service_name, m.matter_type, m.agency, m.agency_code, m.region_code) == (
        raw["SERVICECODE"], raw["SERVICENAME"], raw["SERVICETYPE"], raw["DEPTNAME"], raw["DEPTCODE"], "330106")
    assert m.service_version == raw["SERVICEVERSION"] and m.handling_type == raw["PROJECTTYPE"]
    assert (m.applicant.name, m.applicant.card_type, m.applicant.card_number) == (
        raw["APPLYERNAME"], raw["APPLYERPAGETYPE"], raw["APPLYERPAGECODE"])
    assert m.completed_at == datetime.fromisoformat(raw["FINISHTIME"])
    assert m.updated_at == datetime.fromisoformat(raw["UPDATETIME"])
    assert m.decided_at == datetime.fromisoformat(raw["TRANSACTTIME"])
    assert m.received_at == datetime.fromisoformat(raw["RECEIVETIME"])
    assert (m.result, m.result_document_number, m.license_name, m.license_number) == (
        raw["RESULT"], raw["RESULTCODE"], raw["CERTNAME"], raw["CERTCODE"])
    assert [(s.name, s.actor, s.department, s.opinion) for s in m.steps] == [
        (s["NODENAME"], s["HANDLER"], s["DEPTNAME"], s["OPINION"]) for s in raw["PROCESS"]]
    assert [(x.group.short, x.title, x.file_name, x.media_type, x.size, x.source_sha256) for x in m.documents] == [
        (y["GROUP"], y["MATERIALNAME"], y["FILENAME"], y["FILETYPE"], y["FILESIZE"], y["SHA256"])
        for y in raw["MATERIALS"]]
    for doc in m.documents:
        data = _read(conn, doc)
        assert hashlib.sha256(data).hexdigest() == doc.source_sha256 and len(data) == doc.size


def test_window_is_since_exclusive_until_inclusive(served, dataset) -> None:
    _, conn, _ = served
    done = _done(dataset[0])
    since, until = done[30]["UPDATETIME"], done[95]["UPDATETIME"]
    s, u = datetime.fromisoformat(since), datetime.fromisoformat(until)
    expected = [m["PROJID"] for m in done if s < datetime.fromisoformat(m["UPDATETIME"]) <= u]
    got = [g.project_id for g in conn.completed_between(s, u)]
    assert got == expected
    assert done[30]["PROJID"] not in got and got[-1] == done[95]["PROJID"]
    # Adjacent windows cover everything exactly once.
    rest = [g.project_id for g in conn.completed_between(u, UNTIL)]
    head = [g.project_id for g in conn.completed_between(SINCE, s)]
    assert head + got + rest == [m["PROJID"] for m in done]
    # A naive datetime is read as Asia/Shanghai, the platform's own clock.
    naive = [g.project_id for g in conn.completed_between(s.replace(tzinfo=None), u.replace(tzinfo=None))]
    assert naive == expected


def test_each_defect_arrives_as_the_right_thing(served) -> None:
    _, conn, summary = served
    d = {k: v[0] for k, v in summary["defects"].items()}

    missing = conn.fetch_matter(d["missing_field"])
    assert isinstance(missing, InvalidMatter)
    assert missing.problems == [f"PROJID {d['missing_field']}: APPLYERNAME: field required"]
    assert missing.updated_at is not None and missing.raw["PROJID"] == d["missing_field"]

    unknown = conn.fetch_matter(d["unknown_matter_type"])
    assert isinstance(unknown, InvalidMatter) and len(unknown.problems) == 1
    assert unknown.problems[0].startswith(f"PROJID {d['unknown_matter_type']}: SERVICETYPE: unknown 事项类型 '99'")

    broken = conn.fetch_matter(d["broken_pdf"])
    assert isinstance(broken, Matter)
    datas = [_read(conn, doc) for doc in broken.documents]
    assert any(b"%%EOF" not in x for x in datas)  # the packager's PDF check must catch it
    digests = [hashlib.sha256(x).hexdigest() for x in datas]
    assert digests == [doc.source_sha256 for doc in broken.documents]

    wrong = conn.fetch_matter(d["wrong_digest"])
    assert isinstance(wrong, Matter)  # not verified here: the packager compares and quarantines
    assert sum(hashlib.sha256(_read(conn, doc)).hexdigest() != doc.source_sha256 for doc in wrong.documents) == 1

    unsafe = conn.fetch_matter(d["unsafe_file_name"])
    assert isinstance(unsafe, Matter)
    assert [doc.file_name for doc in unsafe.documents if is_dangerous_path(doc.file_name)] == ["../../etc/passwd"]

    gone = conn.fetch_matter(d["missing_file"])
    assert isinstance(gone, Matter)
    with pytest.raises(DocumentUnavailable, match=r"404"):
        _read(conn, gone.documents[0])
    assert _read(conn, gone.documents[1])  # the others are fine

    assert conn.fetch_matter("33010600000000000000") is None


def test_problem_texts_never_show_a_card_number(served, dataset) -> None:
    sim, conn, _ = served
    done = _done(dataset[0])
    victims = [m for m in done if m["APPLYERPAGETYPE"] == "身份证"][:3]
    # Put the applicant's own ID number where validation will quote it back.
    sim.update_matter(victims[0]["PROJID"], SERVICETYPE=victims[0]["APPLYERPAGECODE"])
    sim.update_matter(victims[1]["PROJID"], RECEIVETIME=victims[1]["APPLYERPAGECODE"], APPLYERNAME=None)
    sim.update_matter(victims[2]["PROJID"], PROCESS=[{"NODENAME": victims[2]["APPLYERPAGECODE"],
                                                      "STARTTIME": "2026-11-21T10:00:00+08:00",
                                                      "ENDTIME": "2026-11-20T10:00:00+08:00"}])
    got = [g for g in conn.completed_between(SINCE, datetime.fromisoformat("2099-01-01T00:00:00+08:00"))
           if isinstance(g, InvalidMatter)]
    assert {g.project_id for g in got} >= {v["PROJID"] for v in victims}
    text = "\n".join(p for g in got for p in g.problems)
    cards = {m["APPLYERPAGECODE"] for m in done}
    assert not [c for c in cards if c in text]
    assert not re.search(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])", text)
    assert mask_id(victims[0]["APPLYERPAGECODE"])[:6] in text  # it was quoted, and masked
    by_id = {g.project_id: g.problems for g in got}
    assert any(p.endswith("APPLYERNAME: field required") for p in by_id[victims[1]["PROJID"]])
    assert any(": RECEIVETIME: " in p for p in by_id[victims[1]["PROJID"]])
    assert any(": PROCESS[0]: " in p and "ENDTIME" in p for p in by_id[victims[2]["PROJID"]])


def test_retries_through_faults_yield_everything_and_exact_bytes(dataset) -> None:
    d, summary = dataset
    clean = _done(d)
    plan = FaultPlan(
        faults=(
            Fault("status", share=0.15, status=503),
            Fault("status", share=0.05, status=500),
            Fault("truncate", share=0.15),
            Fault("delay", every=23, delay_seconds=0.4),
        ),
        seed=3,
    )
    sim = UnifiedSimulator(d, faults=plan)
    url = sim.start()
    try:
        with UnifiedConnector(_config(url, page_size=20, timeout_seconds=0.25, retries=5)) as conn:
            got = list(conn.completed_between(SINCE, UNTIL))
            assert [g.project_id for g in got] == [m["PROJID"] for m in clean]
            assert [g.content_hash() for g in got if isinstance(g, Matter)] == [
                g.content_hash() for g in _clean_matters(d) if isinstance(g, Matter)]
            skip = {p for ids in summary["defects"].values() for p in ids}
            docs = [doc for g in got[:25] if g.project_id not in skip for doc in g.documents]
            for doc in docs:
                assert _read(conn, doc) == (d / "files" / f"{doc.locator}.pdf").read_bytes()
    finally:
        sim.stop()
    assert sim.faults_served["status"] > 0 and sim.faults_served["truncate"] > 0 and sim.faults_served["delay"] > 0
    assert sim.requests["matters"] > 9  # 9 pages without faults
    assert sim.requests["files"] > len(docs) >= 50


def _clean_matters(d: Path) -> list[Matter | InvalidMatter]:
    with UnifiedSimulator(d) as url, UnifiedConnector(_config(url)) as conn:
        return list(conn.completed_between(SINCE, UNTIL))


def test_retries_are_counted_by_the_simulator(dataset) -> None:
    d, summary = dataset
    plan = FaultPlan(faults=(Fault("status", ("matters",), every=2), Fault("truncate", ("files",), every=2),
                             Fault("delay", ("matter",), first=1, delay_seconds=0.5)))
    sim = UnifiedSimulator(d, faults=plan)
    url = sim.start()
    try:
        with UnifiedConnector(_config(url, page_size=30, timeout_seconds=0.25)) as conn:
            got = list(conn.completed_between(SINCE, UNTIL))
            pages = 6  # ceil(180 / 30)
            assert len(got) == 180
            assert sim.requests["matters"] == 2 * pages - 1  # every 2nd request failed and was repeated
            assert sim.faults_served["status"] == pages - 1
            m = conn.fetch_matter(got[0].project_id)  # first request times out, the retry answers
            assert m is not None and m.project_id == got[0].project_id
            assert sim.requests["matter"] == 2 and sim.faults_served["delay"] == 1
            clean = set(_clean(d, summary))
            docs = [doc for g in got[:8] if g.project_id in clean for doc in g.documents]
            for doc in docs:
                assert hashlib.sha256(_read(conn, doc)).hexdigest() == doc.source_sha256
            # every 2nd file request was cut short and repeated (resumed) once
            assert sim.faults_served["truncate"] == len(docs) - 1
            assert sim.requests["files"] == 2 * len(docs) - 1
    finally:
        sim.stop()


def test_a_large_document_cut_short_resumes_with_range(dataset) -> None:
    d, summary = dataset
    big = random.Random(5).randbytes(700_000)
    sim = UnifiedSimulator(d, faults=FaultPlan(faults=(Fault("truncate", ("files",), first=2),
                                                       Fault("truncate", ("files",), every=4))))
    url = sim.start()
    try:
        pid = _clean(d, summary)[0]
        sim.add_document(pid, "过程", "现场照片.pdf", big)
        with UnifiedConnector(_config(url)) as conn:
            m = conn.fetch_matter(pid)
            assert isinstance(m, Matter)
            doc = m.documents[-1]
            assert doc.group is DocumentGroup.PROCESS and doc.size == len(big)
            chunks = list(conn.open_document(doc))
            assert b"".join(chunks) == big
            assert len(chunks) >= 3 and max(map(len, chunks)) <= BLOCK_SIZE  # streamed: a block per read
            assert sim.requests["files"] == 3 and sim.faults_served["truncate"] == 2
            assert sim.range_requests == 2  # resumed where the cut left off, twice
            small = m.documents[0]
            assert _read(conn, small) == (d / "files" / f"{small.locator}.pdf").read_bytes()
            # a small one (a single network read) is cut too, and resumed from the bytes it had
            assert sim.requests["files"] == 5 and sim.range_requests == 3
    finally:
        sim.stop()


def test_all_failing_server_raises_source_unavailable(dataset, monkeypatch) -> None:
    d, summary = dataset
    monkeypatch.setenv("GUIDANG_TEST_UNIFIED_TOKEN", "tok-9f8e7d")
    sim = UnifiedSimulator(d, faults=FaultPlan.down(), token="tok-9f8e7d")
    url = sim.start()
    try:
        with UnifiedConnector(_config(url, retries=2, token_env="GUIDANG_TEST_UNIFIED_TOKEN")) as conn:
            with pytest.raises(SourceUnavailable) as err:
                list(conn.completed_between(SINCE, UNTIL))
            assert f"{url}/api/v1/matters" in str(err.value) and "503" in str(err.value)
            assert "tok-9f8e7d" not in str(err.value)
            assert sim.requests["matters"] == 3
            with pytest.raises(SourceUnavailable):
                conn.acknowledge("x", "y")
            assert sim.requests["ack"] == 3
        doc_plan = FaultPlan(faults=(Fault("truncate", ("files",), every=1),))
        sim2 = UnifiedSimulator(d, faults=doc_plan)
        url2 = sim2.start()
        try:
            with UnifiedConnector(_config(url2, retries=1)) as conn:
                m = conn.fetch_matter(_clean(d, summary)[0])
                assert isinstance(m, Matter)
                with pytest.raises(SourceUnavailable, match="bytes"):
                    _read(conn, m.documents[0])
                assert sim2.requests["files"] == 2
        finally:
            sim2.stop()
    finally:
        sim.stop()
    # Nothing listening at all: connect errors, retried, then SourceUnavailable.
    with UnifiedConnector(_config(url, retries=1)) as conn, pytest.raises(SourceUnavailable, match="ConnectError"):
        conn.fetch_matter("x")


def test_document_failures_never_name_the_bearer_token(dataset, monkeypatch, caplog) -> None:
    d, _ = dataset
    monkeypatch.setenv("GUIDANG_TEST_UNIFIED_TOKEN", "tok-5c4b3a")
    doc = Document(group=DocumentGroup.APPLICATION, title="申请书", file_name="申请书.pdf", locator="F-0001")
    caplog.set_level(logging.INFO)
    with (UnifiedSimulator(d, faults=FaultPlan.down(), token="tok-5c4b3a") as url,
          UnifiedConnector(_config(url, retries=1, token_env="GUIDANG_TEST_UNIFIED_TOKEN")) as conn,
          pytest.raises(SourceUnavailable) as err):
        _read(conn, doc)
    message = str(err.value)
    assert "F-0001" in message and f"{url}/api/v1/files/F-0001" in message and "HTTP 503" in message
    assert "2 attempts" in message and "attempt 1 of 2" in caplog.text
    assert "tok-5c4b3a" not in message and "tok-5c4b3a" not in caplog.text


def test_token_from_environment(dataset, monkeypatch) -> None:
    d, _ = dataset
    monkeypatch.delenv("GUIDANG_TEST_NO_TOKEN", raising=False)
    with pytest.raises(GuidangError, match="GUIDANG_TEST_NO_TOKEN"):
        UnifiedConnector(_config("http://127.0.0.1:9", token_env="GUIDANG_TEST_NO_TOKEN"))
    monkeypatch.setenv("GUIDANG_TEST_WRONG_TOKEN", "wrong-token-value")
    with UnifiedSimulator(d, token="right") as url:
        conn = UnifiedConnector(_config(url, token_env="GUIDANG_TEST_WRONG_TOKEN"))
        with pytest.raises(SourceUnavailable, match="401") as err:
            conn.fetch_matter("x")
        assert "GUIDANG_TEST_WRONG_TOKEN" in str(err.value) and "wrong-token-value" not in str(err.value)
        conn.close()


def test_acknowledge_is_recorded(dataset) -> None:
    d, summary = dataset
    sim = UnifiedSimulator(d, faults=FaultPlan(faults=(Fault("status", ("ack",), first=1),)))
    url = sim.start()
    try:
        pid = _clean(d, summary)[5]
        with UnifiedConnector(_config(url)) as conn:
            conn.acknowledge(pid, "Z109-WS·2026·D30·SJ-0001")
            with pytest.raises(SourceUnavailable, match="404"):
                conn.acknowledge("NO-SUCH-MATTER", "Z109-WS·2026·D30·SJ-0002")
        assert [(a["PROJID"], a["archival_code"]) for a in sim.acks] == [(pid, "Z109-WS·2026·D30·SJ-0001")]
        assert sim.requests["ack"] == 3
    finally:
        sim.stop()


def test_catalogue_for_coverage(served) -> None:
    _, conn, _ = served
    rows = fetch_catalogue(conn.config)
    assert rows == [{"事项编码": e.service_code, "事项名称": e.service_name, "事项类型": e.matter_type,
                     "实施机构": e.agency} for e in DEMO_CATALOGUE]


def test_supplement_arrives_in_the_next_window_as_a_new_version(served, dataset) -> None:
    sim, conn, summary = served
    pid = _done(dataset[0])[3]["PROJID"]
    before = conn.fetch_matter(pid)
    last = datetime.fromisoformat(summary["last_updated"])
    fid = sim.add_document(pid, "申报", "补充材料.pdf", b"%PDF-1.7 supplement", title="补充材料")
    later = list(conn.completed_between(last, datetime.fromisoformat("2099-01-01T00:00:00+08:00")))
    assert [g.project_id for g in later] == [pid]
    after = later[0]
    assert isinstance(before, Matter) and isinstance(after, Matter)
    assert after.updated_at > before.updated_at and after.content_hash() != before.content_hash()
    assert after.documents[-1].locator == fid and after.documents[-1].group is DocumentGroup.APPLICATION
    assert _read(conn, after.documents[-1]) == b"%PDF-1.7 supplement"


def test_window_changing_while_paging_loses_nothing(served, dataset) -> None:
    sim, _, _ = served
    conn = UnifiedConnector(_config(sim.base_url, page_size=10))
    expected = [m["PROJID"] for m in _done(dataset[0])]
    it = conn.completed_between(SINCE, UNTIL)
    first = [next(it).project_id for _ in range(3)]
    # A matter of page 1 is updated after the window: with plain offset paging, the first matter
    # of page 2 would slide onto page 1 and never be seen.
    sim.update_matter(expected[1], RESULT="更正", at=datetime.fromisoformat("2099-01-01T00:00:00+08:00"))
    rest = [g.project_id for g in it]
    conn.close()
    assert first + rest == expected
    assert sim.requests["matters"] > 18  # ceil(180 / 10), plus the re-read after the change


def test_a_corrected_record_resent_with_the_same_update_time_is_not_dropped(tmp_path: Path) -> None:
    """A platform that re-sends a 办件 corrected in place (same PROJID and UPDATETIME, other content)
    must not lose the correction to the paging de-duplication: both rows reach triage, in order."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    d = tmp_path
    clean = set(_clean(d, write_unified_dataset(d)))
    first = next(m for m in _done(d) if m["PROJID"] in clean and m.get("RESULT"))
    corrected = {**first, "RESULT": first["RESULT"] + "（更正）"}
    body = json.dumps({"total": 2, "items": [first, corrected]}, ensure_ascii=False).encode("utf-8")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with UnifiedConnector(_config(f"http://127.0.0.1:{server.server_address[1]}")) as conn:
            got = list(conn.completed_between(SINCE, UNTIL))
    finally:
        server.shutdown()
        server.server_close()
    assert [m.project_id for m in got] == [first["PROJID"], first["PROJID"]]
    assert [m.result for m in got if isinstance(m, Matter)] == [first["RESULT"], corrected["RESULT"]]


def test_a_packed_matter_comes_back_equal_with_the_same_content_hash(served) -> None:
    """night/window.py holds a night's window packed; what triage and staging unpack must be the
    matter collected, or a re-collected matter would look changed (补充材料) to the next night, and
    its times must keep the connector's tzinfo (pydantic-core's crashes the interpreter's exit)."""
    from night.window import Packed

    _sim, conn, _summary = served
    matters = [m for m in conn.completed_between(SINCE, UNTIL) if isinstance(m, Matter)]
    assert len(matters) > 100 and any(m.documents and m.steps for m in matters)
    for m in matters:
        packed = Packed.of(m)
        back = packed.load()
        assert back == m and back.content_hash() == m.content_hash(), m.key
        assert type(back.completed_at.tzinfo) is type(m.completed_at.tzinfo), m.key
        assert (packed.key, packed.updated_at, packed.completed_at) == (m.key, m.updated_at, m.completed_at)
        assert len(packed.data) < 2500  # the point of packing: a fraction of the objects' 8 KB


def test_packed_matters_keep_their_times_on_one_zone_object_per_offset(served) -> None:
    """A window's packed matters are held by the run process until their slice: each time parsed
    from "+08:00" text carries a zone object of its own, which a large window paid for twice a
    matter. Packed, the times are the same instants and print the same, over one shared zone."""
    from night.window import Packed

    _sim, conn, _summary = served
    matters = [m for m in conn.completed_between(SINCE, UNTIL) if isinstance(m, Matter)]
    assert len({id(m.updated_at.tzinfo) for m in matters}) > 100  # as parsed: one zone object per time
    packed = [Packed.of(m) for m in matters]
    assert len({id(p.updated_at.tzinfo) for p in packed} | {id(p.completed_at.tzinfo) for p in packed}) == 1
    for m, p in zip(matters, packed, strict=True):
        assert (p.updated_at, p.completed_at) == (m.updated_at, m.completed_at)
        assert p.updated_at.isoformat() == m.updated_at.isoformat() and p.updated_at.tzname() == m.updated_at.tzname()


def test_a_spooled_window_keeps_its_matters_on_disk_and_sends_them_whole(served, tmp_path: Path) -> None:
    """The run's process keeps its window in a spool file, not in memory; a packed matter sent to
    another process (a worker, a Dask or Prefect task) must carry its bytes, or the worker could
    only read them on this machine while the spool exists."""
    import pickle

    from night.window import Packed, Spool, spooled

    _sim, conn, _summary = served
    matters = [m for m in conn.completed_between(SINCE, UNTIL) if isinstance(m, Matter)]
    spool = Spool(tmp_path / "window.spool")
    window = spooled([Packed.of(m) for m in matters], spool)
    assert spool.path.stat().st_size == sum(len(p.data) for p in window)  # every matter's bytes are in the file
    assert all(p._data is None for p in window)  # and none of them in memory
    assert [p.load() for p in window] == matters
    size = spool.path.stat().st_size
    assert spooled(window, spool) == window and spool.path.stat().st_size == size  # already there: not written twice
    sent = pickle.dumps(window)
    spool.close()
    spool.path.unlink()
    back = pickle.loads(sent)  # the spool is gone: what was sent stands on its own
    assert [p.load() for p in back] == matters
    assert [(p.key, p.completed_at) for p in back] == [(m.key, m.completed_at) for m in matters]
