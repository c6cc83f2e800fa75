"""A world for `guidang bench`: N completed matters of K PDFs of about BYTES each, nothing else.

The demo world is about variety (three sources, planted defects); a benchmark needs volume that
can be set: every matter here is in scope and sound, so the figures measure the path a good matter
takes. The documents are valid PDFs whose one page shows an uncompressed grey-scale image of
random bytes (the shape of a scanned form: incompressible, one large stream that pypdf does not
decode to open the file), so hashing, copying and inspecting them costs what real scans cost.

Matters are written to the unified system's dataset (served by `UnifiedSimulator`, normally in a
process of its own), so the night fetches every byte over HTTP as it would in production. Files
are written one by one; generating a 20,000-matter world holds one document in memory at a time.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from guidang_demo.catalogue import DEMO_CATALOGUE, DEMO_FONDS
from guidang_demo.office import DOCX_TYPE, make_docx
from guidang_demo.unified_data import AREA_CODE, CATALOGUE_FILE, FILES_DIR, MATTERS_FILE, SHANGHAI, catalogue_rows
from guidang_demo.world import FONDS_NAME, RETENTION_FILE, write_retention_workbook

BENCH_FIRST_DAY = date(2026, 11, 2)
SOURCE_DIR = "unified"


def bench_pdf(rng: random.Random, size: int, label: str) -> bytes:
    """A valid one-page PDF of about `size` bytes (at least ~1 KB): a text line and a grey image."""
    side = max(8, int((max(size - 900, 64)) ** 0.5))
    pixels = rng.randbytes(side * side)
    text = f"BT /F1 10 Tf 36 800 Td ({label}) Tj ET\nq 500 0 0 500 36 250 cm /Im1 Do Q\n".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> /XObject << /Im1 6 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
        b"/BitsPerComponent 8 /Length %d >>\nstream\n" % (side, side, len(pixels)) + pixels + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _in_scope_entries() -> list[Any]:
    return [e for e in DEMO_CATALOGUE if e.source == "unified" and e.retention in ("Y", "D30", "D10")]


def _record(rng: random.Random, n: int, entry: Any, day: date, area: str = AREA_CODE,
            department: tuple[str, str] | None = None) -> dict[str, Any]:
    received = datetime.combine(day, time(9, 0), SHANGHAI) + timedelta(seconds=rng.randrange(6 * 3600))
    finished = received + timedelta(minutes=rng.randrange(20, 120))
    updated = finished + timedelta(minutes=5)
    projid = f"{area}{day:%Y%m%d}{n:06d}"
    agency, agency_code = department or (entry.agency, entry.agency_code)
    iso = lambda t: t.isoformat(timespec="seconds")  # noqa: E731 - a local shorthand
    return {
        "PROJID": projid, "SERVICECODE": entry.service_code, "SERVICEVERSION": "1",
        "SERVICENAME": entry.service_name, "SERVICETYPE": entry.matter_type, "PROJECTTYPE": "承诺件",
        "DEPTNAME": agency, "DEPTCODE": agency_code, "AREACODE": area,
        "APPLYERNAME": f"杭州测速{n % 997}有限公司", "APPLYERPAGETYPE": "统一社会信用代码",
        "APPLYERPAGECODE": "91330106MA2" + f"{n:07d}"[-7:],
        "RECEIVETIME": iso(received), "TRANSACTTIME": iso(finished - timedelta(minutes=10)),
        "FINISHTIME": iso(finished), "RESULT": "准予许可", "RESULTCODE": f"杭西测〔{day.year}〕{n}号",
        "CERTNAME": None, "CERTCODE": None, "UPDATETIME": iso(updated),
        "PROCESS": [
            {"NODENAME": "受理", "HANDLER": "王敏", "DEPTNAME": agency, "OPINION": "材料齐全，予以受理",
             "STARTTIME": iso(received), "ENDTIME": iso(received + timedelta(minutes=5))},
            {"NODENAME": "决定", "HANDLER": "李强", "DEPTNAME": agency, "OPINION": "准予许可",
             "STARTTIME": iso(received + timedelta(minutes=5)), "ENDTIME": iso(finished)},
        ],
    }


def build_bench_world(
    world_dir: Path, *, matters: int, docs: int, size: int, seed: int = 2026, days: int = 20, office: bool = False,
    area: str = AREA_CODE, departments: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """Write the world into `world_dir` (which must not hold one); returns its summary. `office`:
    the documents are DOCX files of about `size` bytes (each normalised to a PDF/A rendition by
    the night, `guidang bench --office`) instead of PDFs. `area` (行政区划代码) begins every 办件编号,
    and `departments` ((实施机构, 代码) pairs), when given, are the matters' units in turn instead of
    the catalogue's: a province's world is several of these, one per district's system.

    The summary has `matters`, `documents`, `bytes`, `documents_dir` (where the document files lie,
    one file each, for timing other tools on the same bytes) and `config`.
    """
    if matters < 1 or docs < 1:
        raise ValueError("a bench world needs at least one matter of one document")
    world_dir = Path(world_dir)
    data_dir = world_dir / "sources" / SOURCE_DIR
    files_dir = data_dir / FILES_DIR
    files_dir.mkdir(parents=True)
    (world_dir / "archive").mkdir()
    rng = random.Random(seed)
    entries = _in_scope_entries()
    groups = ["申报", "过程", "结果"]
    records = []
    total = 0
    for i in range(matters):
        entry = entries[i % len(entries)]
        department = departments[i % len(departments)] if departments else None
        record = _record(rng, i + 1, entry, BENCH_FIRST_DAY + timedelta(days=i % days), area, department)
        materials = []
        for k in range(docs):
            fid = f"{record['PROJID']}-{k + 1:02d}"
            label = f"{record['PROJID']} document {k + 1}"
            if office:
                data = make_docx([label, "申请人：杭州测速有限公司"], pages=2, padding=max(0, size - 1500))
                ext, media = "docx", DOCX_TYPE
            else:
                data, ext, media = bench_pdf(rng, size, label), "pdf", "application/pdf"
            (files_dir / f"{fid}.pdf").write_bytes(data)
            total += len(data)
            group = groups[0] if k == 0 else groups[2] if k == docs - 1 else groups[1]
            materials.append({
                "FILEID": fid, "GROUP": group, "MATERIALNAME": f"材料{k + 1}", "FILENAME": f"{k + 1:02d}-材料.{ext}",
                "FILETYPE": media, "FILESIZE": len(data), "SHA256": hashlib.sha256(data).hexdigest(),
            })
        record["MATERIALS"] = materials
        records.append(record)
    (data_dir / MATTERS_FILE).write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    (data_dir / CATALOGUE_FILE).write_text(json.dumps(catalogue_rows(), ensure_ascii=False), encoding="utf-8")
    write_retention_workbook(world_dir / RETENTION_FILE)
    config = world_dir / "guidang.yaml"
    config.write_text(_config(), encoding="utf-8")
    return {
        "matters": matters, "documents": matters * docs, "bytes": total,
        "documents_dir": str(files_dir), "config": str(config),
        "first_day": BENCH_FIRST_DAY.isoformat(),
        "until": (BENCH_FIRST_DAY + timedelta(days=days + 1)).isoformat(),
    }


def _config() -> str:
    return f"""\
# guidang.yaml of a `guidang bench` world: one unified source, fs repository, SQLite ledger.
fonds:
  - code: {DEMO_FONDS}
    name: {FONDS_NAME}
ledger_url: sqlite:///ledger.sqlite
repository:
  kind: fs
  path: archive
retention:
  table: {RETENTION_FILE}
staging: staging
timezone: Asia/Shanghai
sources:
  - name: unified
    kind: unified
    base_url: ${{GUIDANG_UNIFIED_URL:-http://127.0.0.1:8765}}
    page_size: 100
    initial_since: "{BENCH_FIRST_DAY.isoformat()}T00:00:00+08:00"
"""
