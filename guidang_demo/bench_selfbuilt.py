"""A bench world's matters as a department's self-built system (自建系统) holds them: an SQLite
database of 办件, 附件 and 办理环节 rows whose attachments are files on disk, read by guidang's SQL
connector (connectors/sources/sql.py) instead of the unified system's HTTP interface.

Why: the performance targets are measured from outside over worlds of a self-built system, where
no server process serves the documents and the night reads them from the file system. `guidang
bench --source sql` times the night over the same matters and the same files that way, so the
bench reads the night as the targets do. The attachments are the unified world's own files, not
copies: every contender still reads the same bytes.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import yaml

from guidang_demo.unified_data import FILES_DIR, MATTERS_FILE

DATABASE = "selfbuilt.sqlite"  # under the world's sources/
SOURCE_NAME = "zjxt"

_TABLES = """
CREATE TABLE SP_BJ (BJBH TEXT PRIMARY KEY, SXBM TEXT, SXBB TEXT, SXMC TEXT, SXLX TEXT, BJLX TEXT, SLBM TEXT,
  SLBMDM TEXT, XZQHDM TEXT, SQRMC TEXT, SQRZJLX TEXT, SQRZJHM TEXT, BLJG TEXT, JDWH TEXT, SLSJ TEXT, JDSJ TEXT,
  BJSJ TEXT, GXSJ TEXT, BLZT TEXT, GDZT TEXT, GDDH TEXT);
CREATE TABLE SP_FJ (FJBH TEXT PRIMARY KEY, BJBH TEXT, CLLB TEXT, CLMC TEXT, WJM TEXT, WJLX TEXT, WJDX INTEGER,
  WJHXZ TEXT, CCLJ TEXT);
CREATE INDEX SP_FJ_BJBH ON SP_FJ (BJBH);
CREATE TABLE SP_HJ (BJBH TEXT, XH INTEGER, HJMC TEXT, BLR TEXT, BLBM TEXT, BLYJ TEXT, KSSJ TEXT, JSSJ TEXT);
CREATE INDEX SP_HJ_BJBH ON SP_HJ (BJBH, XH);
"""


def as_selfbuilt(world_dir: Path, world: dict[str, Any]) -> dict[str, Any]:
    """Put the unified world `world` (guidang_demo.bench_world.build_bench_world's summary) into a
    self-built system's database beside it and point its guidang.yaml at that; returns the summary
    with `source` "sql"."""
    data_dir = Path(world["documents_dir"]).parent
    records = json.loads((data_dir / MATTERS_FILE).read_text(encoding="utf-8"))
    database = world_dir / "sources" / DATABASE
    with closing(sqlite3.connect(database)) as db, db:  # committed, then closed
        db.executescript(_TABLES)
        for r in records:
            db.execute(
                "INSERT INTO SP_BJ VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,'BJ',NULL,NULL)",
                (r["PROJID"], r["SERVICECODE"], r["SERVICEVERSION"], r["SERVICENAME"], r["SERVICETYPE"],
                 r["PROJECTTYPE"], r["DEPTNAME"], r["DEPTCODE"], r["AREACODE"], r["APPLYERNAME"],
                 r["APPLYERPAGETYPE"], r["APPLYERPAGECODE"], r["RESULT"], r["RESULTCODE"], r["RECEIVETIME"],
                 r["TRANSACTTIME"], r["FINISHTIME"], r["UPDATETIME"]))
            db.executemany("INSERT INTO SP_FJ VALUES (?,?,?,?,?,?,?,?,?)", [
                (m["FILEID"], r["PROJID"], m["GROUP"], m["MATERIALNAME"], m["FILENAME"], m["FILETYPE"],
                 m["FILESIZE"], m["SHA256"], f"{m['FILEID']}.pdf") for m in r["MATERIALS"]])
            db.executemany("INSERT INTO SP_HJ VALUES (?,?,?,?,?,?,?,?)", [
                (r["PROJID"], i, p["NODENAME"], p["HANDLER"], p["DEPTNAME"], p["OPINION"], p["STARTTIME"],
                 p["ENDTIME"]) for i, p in enumerate(r["PROCESS"], start=1)])
    config = Path(world["config"])
    settings = yaml.safe_load(config.read_text(encoding="utf-8"))
    first = settings["sources"][0]["initial_since"]
    settings["sources"] = [_source(files_root=(data_dir / FILES_DIR).relative_to(world_dir).as_posix(),
                                   initial_since=first)]
    config.write_text("# guidang.yaml of a `guidang bench --source sql` world: one self-built system over SQL, fs "
                      "repository, SQLite ledger.\n" + yaml.safe_dump(settings, allow_unicode=True, sort_keys=False),
                      encoding="utf-8")
    return {**world, "source": "sql"}


def _source(*, files_root: str, initial_since: str) -> dict[str, Any]:
    return {
        "name": SOURCE_NAME,
        "kind": "sql",
        "url": f"sqlite:///sources/{DATABASE}",
        "matters_query": ("SELECT * FROM SP_BJ\n WHERE BLZT = 'BJ' AND GXSJ > :since AND GXSJ <= :until\n"
                          " ORDER BY GXSJ, BJBH\n"),
        "columns": {
            "project_id": "BJBH", "service_code": "SXBM", "service_version": "SXBB", "service_name": "SXMC",
            "matter_type": "SXLX", "handling_type": "BJLX", "agency": "SLBM", "agency_code": "SLBMDM",
            "region_code": "XZQHDM", "applicant_name": "SQRMC", "applicant_card_type": "SQRZJLX",
            "applicant_card_number": "SQRZJHM", "result": "BLJG", "result_document_number": "JDWH",
            "received_at": "SLSJ", "decided_at": "JDSJ", "completed_at": "BJSJ", "updated_at": "GXSJ",
        },
        "documents_query": ("SELECT FJBH, CLLB, CLMC, WJM, WJLX, WJDX, WJHXZ, CCLJ FROM SP_FJ\n"
                            " WHERE BJBH = :project_id\n"),
        "document_columns": {"key": "FJBH", "group": "CLLB", "title": "CLMC", "file_name": "WJM",
                             "media_type": "WJLX", "size": "WJDX", "source_sha256": "WJHXZ"},
        "content": {"kind": "path", "column": "CCLJ", "root": files_root},
        "steps_query": ("SELECT HJMC, BLR, BLBM, BLYJ, KSSJ, JSSJ FROM SP_HJ WHERE BJBH = :project_id "
                        "ORDER BY XH\n"),
        "step_columns": {"name": "HJMC", "actor": "BLR", "department": "BLBM", "opinion": "BLYJ",
                         "started_at": "KSSJ", "ended_at": "JSSJ"},
        "timezone": "Asia/Shanghai",
        "initial_since": initial_since,
        "ack_statement": "UPDATE SP_BJ SET GDZT = '1', GDDH = :archival_code WHERE BJBH = :project_id\n",
    }
