"""The unified system's demo dataset and its HTTP simulator, checked over real HTTP on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from guidang_demo.catalogue import DEMO_CATALOGUE
from guidang_demo.identities import id_check_digit, uscc_check_char
from guidang_demo.unified_defects import DEFECT_KINDS
from guidang_demo.unified_simulator import Fault, FaultPlan, UnifiedSimulator, write_unified_dataset

FIRST_DAY = date(2026, 11, 20)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    d = tmp_path_factory.mktemp("unified")
    return d, write_unified_dataset(d)


def _records(d: Path) -> list[dict]:
    return json.loads((d / "matters.json").read_text(encoding="utf-8"))


def _tree(d: Path) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_two_datasets_from_one_seed_are_byte_identical(tmp_path: Path, dataset: tuple[Path, dict]) -> None:
    d, summary = dataset
    again = write_unified_dataset(tmp_path / "again")
    assert again == summary
    first, second = _tree(d), _tree(tmp_path / "again")
    assert sorted(first) == sorted(second)
    assert len(first) > 700
    for name in first:
        assert first[name] == second[name], name
    other = write_unified_dataset(tmp_path / "other", seed=7, count=20)
    assert {m["PROJID"] for m in _records(tmp_path / "other")} != {m["PROJID"] for m in _records(d)[:26]}
    assert other["completed"] == 20


def test_dataset_shape(dataset: tuple[Path, dict]) -> None:
    d, summary = dataset
    records = _records(d)
    done = [m for m in records if m.get("FINISHTIME")]
    assert summary["completed"] == len(done) == 180
    assert summary["in_progress"] == len(records) - 180 >= 1
    assert len({m["PROJID"] for m in records}) == len(records)

    unified = {e.service_code for e in DEMO_CATALOGUE if e.source == "unified"}
    assert {m["SERVICECODE"] for m in done} == unified
    assert len({m["DEPTNAME"] for m in done}) >= 3

    start = datetime.fromisoformat("2026-11-20T00:00:00+08:00")
    end = start + timedelta(days=6)
    defective = {p for ids in summary["defects"].values() for p in ids}
    for m in done:
        times = [m["RECEIVETIME"], m["TRANSACTTIME"], m["FINISHTIME"], m["UPDATETIME"]]
        assert all(t.endswith("+08:00") for t in times), m["PROJID"]
        parsed = [datetime.fromisoformat(t) for t in times]
        assert parsed == sorted(parsed), m["PROJID"]
        assert all(start <= t < end for t in parsed), m["PROJID"]
        assert [s["NODENAME"] for s in m["PROCESS"]][:2] == ["申请", "受理"]
        assert m["PROCESS"][-1]["NODENAME"] == "送达"
        for s in m["PROCESS"]:
            assert s["STARTTIME"] <= s["ENDTIME"] and 8 <= int(s["STARTTIME"][11:13]) <= 17
        assert 2 <= len(m["MATERIALS"]) <= 6
        assert "结果" in {mat["GROUP"] for mat in m["MATERIALS"]}
        assert m["PROJECTTYPE"] in ("即办件", "承诺件")
        code = m["APPLYERPAGECODE"]
        assert len(code) == 18
        if m["APPLYERPAGETYPE"] == "身份证":
            assert code[:17].isdigit() and id_check_digit(code[:17]) == code[17]
            datetime.strptime(code[6:14], "%Y%m%d")
        else:
            assert m["APPLYERPAGETYPE"] == "统一社会信用代码" and uscc_check_char(code[:17]) == code[17]
        if m["PROJID"] in defective:
            continue
        assert m["SERVICETYPE"] in {e.matter_type for e in DEMO_CATALOGUE}
        for mat in m["MATERIALS"]:
            data = (d / "files" / f"{mat['FILEID']}.pdf").read_bytes()  # the simulator's storage name
            if mat["FILETYPE"] == "application/ofd":  # a licence: a sealed OFD container
                assert m["SERVICETYPE"] == "01" and mat["GROUP"] and mat["FILENAME"].endswith(".ofd")
                assert data.startswith(b"PK\x03\x04") and b"Doc_0/Signs/Signatures.xml" in data
            elif mat["FILENAME"].endswith((".docx", ".xlsx")):  # an applicant's Word or Excel attachment
                assert mat["GROUP"] and data.startswith(b"PK\x03\x04") and b"[Content_Types].xml" in data
            else:
                assert data.startswith(b"%PDF-") and b"%%EOF" in data[-64:]
            assert mat["FILESIZE"] == len(data)
            assert mat["SHA256"] == hashlib.sha256(data).hexdigest()
    assert all(not m.get("FINISHTIME") for m in records if m not in done)


def test_each_defect_kind_is_one_distinct_matter_spoiled_as_described(dataset: tuple[Path, dict]) -> None:
    d, summary = dataset
    defects = summary["defects"]
    assert set(defects) == set(DEFECT_KINDS)
    victims = [ids[0] for ids in defects.values()]
    assert len(set(victims)) == len(DEFECT_KINDS)
    by_id = {m["PROJID"]: m for m in _records(d)}

    def files(pid: str) -> list[tuple[dict, Path]]:
        return [(mat, d / "files" / f"{mat['FILEID']}.pdf") for mat in by_id[pid]["MATERIALS"]]

    broken = files(defects["broken_pdf"][0])
    assert any(p.read_bytes().startswith(b"%PDF") and b"%%EOF" not in p.read_bytes() for _, p in broken)
    assert all(mat["SHA256"] == hashlib.sha256(p.read_bytes()).hexdigest() for mat, p in broken)
    assert sum(not p.exists() for _, p in files(defects["missing_file"][0])) == 1
    assert by_id[defects["unknown_matter_type"][0]]["SERVICETYPE"] == "99"
    assert "APPLYERNAME" not in by_id[defects["missing_field"][0]]
    assert "../../etc/passwd" in [mat["FILENAME"] for mat, _ in files(defects["unsafe_file_name"][0])]
    wrong = files(defects["wrong_digest"][0])
    assert sum(mat["SHA256"] != hashlib.sha256(p.read_bytes()).hexdigest() for mat, p in wrong) == 1


def test_list_endpoint_window_paging_and_completed_only(dataset: tuple[Path, dict]) -> None:
    d, summary = dataset
    done = sorted((m for m in _records(d) if m.get("FINISHTIME")),
                  key=lambda m: (datetime.fromisoformat(m["UPDATETIME"]), m["PROJID"]))
    since, until = done[10]["UPDATETIME"], done[60]["UPDATETIME"]
    expected = [m["PROJID"] for m in done
                if datetime.fromisoformat(since) < datetime.fromisoformat(m["UPDATETIME"])
                <= datetime.fromisoformat(until)]
    with UnifiedSimulator(d) as url:
        got: list[str] = []
        page = 1
        while True:
            body = httpx.get(f"{url}/api/v1/matters",
                             params={"since": since, "until": until, "page": page, "size": 7}).json()
            assert body["total"] == len(expected) and body["size"] == 7 and body["page"] == page
            if not body["items"]:
                break
            got += [i["PROJID"] for i in body["items"]]
            page += 1
        assert got == expected
        assert done[10]["PROJID"] not in got and done[60]["PROJID"] in got
        # The whole range serves the completed matters only, never the ones still in progress.
        everything = httpx.get(f"{url}/api/v1/matters", params={"size": 1000}).json()
        assert everything["total"] == summary["completed"]
        # An unencoded "+08:00" (a person typing the URL) still means +08:00.
        typed = httpx.get(f"{url}/api/v1/matters?since={since}&until={until}&size=1").json()
        assert typed["total"] == len(expected)
        assert httpx.get(f"{url}/api/v1/matters", params={"since": "yesterday"}).status_code == 400
        assert httpx.get(f"{url}/api/v1/matters/NOPE").status_code == 404
        assert httpx.get(f"{url}/api/v1/files/NOPE").status_code == 404
        assert httpx.get(f"{url}/api/v1/files/..%2Fmatters.json").status_code == 404


def test_files_catalogue_ranges_and_ack(dataset: tuple[Path, dict]) -> None:
    d, summary = dataset
    m = next(r for r in _records(d) if r.get("FINISHTIME") and r["PROJID"] not in
             {p for ids in summary["defects"].values() for p in ids})
    mat = m["MATERIALS"][0]
    data = (d / "files" / f"{mat['FILEID']}.pdf").read_bytes()
    with UnifiedSimulator(d) as url:
        r = httpx.get(f"{url}/api/v1/files/{mat['FILEID']}")
        assert r.status_code == 200 and r.content == data and r.headers["content-length"] == str(len(data))
        r = httpx.get(f"{url}/api/v1/files/{mat['FILEID']}", headers={"Range": "bytes=100-"})
        assert r.status_code == 206 and r.content == data[100:]
        cat = httpx.get(f"{url}/api/v1/catalogue").json()["items"]
        assert [c["SERVICECODE"] for c in cat] == [e.service_code for e in DEMO_CATALOGUE]
        assert set(cat[0]) == {"SERVICECODE", "SERVICENAME", "SERVICETYPE", "DEPTNAME", "DEPTCODE"}
        ack = httpx.post(f"{url}/api/v1/matters/{m['PROJID']}/archive-ack", json={"archival_code": "Z109-WS-1"})
        assert ack.status_code == 200
        assert httpx.post(f"{url}/api/v1/matters/{m['PROJID']}/archive-ack", json={}).status_code == 400
        assert httpx.post(f"{url}/api/v1/matters/NOPE/archive-ack", json={"archival_code": "x"}).status_code == 404
        listed = httpx.get(f"{url}/api/v1/acks").json()["items"]
        assert [(a["PROJID"], a["archival_code"]) for a in listed] == [(m["PROJID"], "Z109-WS-1")]


def test_token_is_required_when_configured(dataset: tuple[Path, dict]) -> None:
    d, _ = dataset
    with UnifiedSimulator(d, token="s3cret") as url:
        assert httpx.get(f"{url}/api/v1/catalogue").status_code == 401
        assert httpx.get(f"{url}/api/v1/catalogue", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert httpx.get(f"{url}/api/v1/catalogue", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_fault_plan_is_counter_based_and_deterministic(dataset: tuple[Path, dict]) -> None:
    d, _ = dataset
    plan = FaultPlan(faults=(
        Fault("status", ("catalogue",), every=3, status=500),
        Fault("truncate", ("catalogue",), first=1),
        Fault("delay", ("acks",), first=1, delay_seconds=0.6),
    ))
    with UnifiedSimulator(d, faults=plan) as url:
        sim_url = f"{url}/api/v1/catalogue"
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(sim_url)  # 1st: truncated body
        assert httpx.get(sim_url).status_code == 200  # 2nd
        assert httpx.get(sim_url).status_code == 500  # 3rd
        assert httpx.get(sim_url).status_code == 200  # 4th
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(f"{url}/api/v1/acks", timeout=0.2)
        assert httpx.get(f"{url}/api/v1/acks", timeout=2).status_code == 200
    # A seeded share hits the same request numbers every time.
    shared = FaultPlan.flaky(share=0.3, seed=11)
    hits = [[shared.pick("files", n, fired) is not None for n in range(1, 200)]
            for fired in (Counter(), Counter())]
    assert hits[0] == hits[1] and 0.2 < sum(hits[0]) / 199 < 0.9


def test_wrong_digest_fault_changes_served_digest_only(dataset: tuple[Path, dict]) -> None:
    d, summary = dataset
    pid = next(m["PROJID"] for m in _records(d) if m.get("FINISHTIME") and m["PROJID"] not in
               {p for ids in summary["defects"].values() for p in ids})
    with UnifiedSimulator(d, faults=FaultPlan(wrong_digest=frozenset({pid}))) as url:
        served = httpx.get(f"{url}/api/v1/matters/{pid}").json()
        for mat in served["MATERIALS"]:
            data = httpx.get(f"{url}/api/v1/files/{mat['FILEID']}").content
            assert data == (d / "files" / f"{mat['FILEID']}.pdf").read_bytes()
            assert hashlib.sha256(data).hexdigest() != mat["SHA256"]


def test_changes_while_running_bump_updatetime(dataset: tuple[Path, dict]) -> None:
    d, summary = dataset
    sim = UnifiedSimulator(d)
    url = sim.start()
    try:
        pid = next(m["PROJID"] for m in _records(d) if m.get("FINISHTIME"))
        old_last = summary["last_updated"]
        fid = sim.add_document(pid, "结果", "补正决定书.pdf", b"%PDF-1.4 supplement")
        ut = sim.matter(pid)["UPDATETIME"]
        assert datetime.fromisoformat(ut) > datetime.fromisoformat(old_last)
        later = httpx.get(f"{url}/api/v1/matters", params={"since": old_last}).json()
        assert [i["PROJID"] for i in later["items"]] == [pid]
        assert later["items"][0]["MATERIALS"][-1]["FILEID"] == fid
        assert httpx.get(f"{url}/api/v1/files/{fid}").content == b"%PDF-1.4 supplement"
        ut2 = sim.update_matter(pid, RESULT="准予变更")
        assert ut2 > ut and httpx.get(f"{url}/api/v1/matters/{pid}").json()["RESULT"] == "准予变更"
        assert sim.request_count("matters") == 1 and sim.request_count("files") == 1
    finally:
        sim.stop()
    # The dataset on disk is untouched: changes live in the running simulator only.
    assert all(m.get("RESULT") != "准予变更" for m in _records(d))
    assert not (d / "files" / f"{fid}.pdf").exists()


def test_small_dataset_arguments(tmp_path: Path) -> None:
    s = write_unified_dataset(tmp_path, seed=1, count=12, first_day=date(2026, 1, 5), days=2)
    assert s["completed"] == 12
    assert s["first_updated"] >= "2026-01-05" and s["last_updated"] < "2026-01-07"
    with pytest.raises(ValueError):
        write_unified_dataset(tmp_path / "x", count=3)
