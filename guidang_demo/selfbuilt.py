"""Two simulated self-built systems (自建系统): their table layouts and their guidang.yaml entries.

The point of the pair is that they differ in everything a configuration has to absorb: one is an
older platform with upper-case pinyin names, status codes and the files in a BLOB column
(投资项目在线审批监管平台, `tzxm`); the other a newer system with snake_case English names and the
files on disk under a folder (双随机一公开 inspection system, `sjjc`). `tzxm_source` / `sjjc_source`
are the only description guidang gets of either: `SqlConnector` reads both with no code of their own.
The rows (seeded, with each system's documented defects) are written by `selfbuilt_data`.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import Column, DateTime, Integer, LargeBinary, MetaData, String, Table
from sqlalchemy.dialects.mysql import LONGBLOB

System = Literal["tzxm", "sjjc"]

TZXM_NAME = "投资项目在线审批监管平台"
SJJC_NAME = "双随机一公开监管平台"

# -------------------------------------------------------------------------- table layouts


def _blob() -> LargeBinary:
    # MariaDB's plain BLOB stops at 64 KiB; a scanned approval runs to megabytes.
    return LargeBinary().with_variant(LONGBLOB(), "mysql", "mariadb")


def tzxm_metadata(*, fold_case: bool = False) -> MetaData:
    """The tzxm tables. `fold_case` writes the names in lower case, which is what the platform's
    upper-case DDL becomes on PostgreSQL (unquoted names fold), so the same SQL runs there."""
    n = str.lower if fold_case else str
    md = MetaData()
    Table(
        n("XM_PROJECT"), md,
        Column(n("XMDM"), String(32), primary_key=True),  # 项目代码
        Column(n("XMMC"), String(200), nullable=False),  # 项目名称
        Column(n("JSDW"), String(200), nullable=False),  # 建设单位
        Column(n("TYSHXYDM"), String(18), nullable=False),  # 统一社会信用代码
        Column(n("FDDBR"), String(50)),  # 法定代表人
        Column(n("JSDD"), String(200)),  # 建设地点
        Column(n("ZTZ"), Integer),  # 总投资（万元）
        Column(n("CJSJ"), DateTime, nullable=False),  # 创建时间
    )
    Table(
        n("XM_APPROVAL"), md,
        Column(n("SPBH"), String(32), primary_key=True),  # 审批编号 = 办件编号
        Column(n("XMDM"), String(32), nullable=False),
        Column(n("SXBM"), String(32), nullable=False),  # 事项编码
        Column(n("SXBB"), String(8)),  # 事项版本
        Column(n("SXMC"), String(100), nullable=False),  # 事项名称
        Column(n("SXLX"), String(2), nullable=False),  # 事项类型
        Column(n("SPBM"), String(100), nullable=False),  # 审批部门
        Column(n("SPBMDM"), String(32)),
        Column(n("XZQHDM"), String(12)),  # 行政区划代码
        Column(n("BJLX"), String(10)),  # 办件类型
        Column(n("BLZT"), String(2), nullable=False),  # 办理状态: SL 受理中, BJ 办结
        Column(n("SBSJ"), DateTime),  # 申报时间
        Column(n("SLSJ"), DateTime),  # 受理时间
        Column(n("SPSJ"), DateTime),  # 审批决定时间
        Column(n("BJSJ"), DateTime),  # 办结时间
        Column(n("SPJG"), String(50)),  # 审批结果
        Column(n("PFWH"), String(64)),  # 批复文号
        Column(n("GXSJ"), DateTime, nullable=False),  # 更新时间
        Column(n("GDZT"), String(1), nullable=False, default="0"),  # 归档状态
        Column(n("GDDH"), String(64)),  # 档号（归档回传）
        Column(n("GDSJ"), DateTime),  # 归档时间
    )
    Table(
        n("XM_SPLC"), md,  # 审批流程
        Column(n("LCID"), Integer, primary_key=True, autoincrement=False),
        Column(n("SPBH"), String(32), nullable=False),
        Column(n("SXH"), Integer, nullable=False),  # 顺序号
        Column(n("HJMC"), String(20), nullable=False),  # 环节名称
        Column(n("BLR"), String(50)),
        Column(n("BLBM"), String(100)),
        Column(n("BLYJ"), String(500)),
        Column(n("KSSJ"), DateTime),
        Column(n("JSSJ"), DateTime),
    )
    Table(
        n("XM_ATTACHMENT"), md,
        Column(n("FJID"), Integer, primary_key=True, autoincrement=False),
        Column(n("SPBH"), String(32), nullable=False),
        Column(n("FJLB"), String(2), nullable=False),  # 附件类别: 01 申报, 02 过程, 03 结果
        Column(n("FJMC"), String(200), nullable=False),  # 附件名称
        Column(n("WJM"), String(200), nullable=False),  # 文件名
        Column(n("WJLX"), String(100)),  # 文件类型
        Column(n("WJDX"), Integer),  # 文件大小（字节）
        Column(n("WJHXZ"), String(64)),  # 文件哈希值 (SHA-256)
        Column(n("FJNR"), _blob()),  # 附件内容
        Column(n("SCSJ"), DateTime),  # 上传时间
    )
    return md


def sjjc_metadata(*, fold_case: bool = False) -> MetaData:
    """The sjjc tables (already lower case; `fold_case` is accepted for symmetry)."""
    md = MetaData()
    Table(
        "inspection_task", md,
        Column("task_no", String(32), primary_key=True),
        Column("task_name", String(200), nullable=False),
        Column("item_code", String(32), nullable=False),
        Column("item_name", String(100), nullable=False),
        Column("dept_name", String(100), nullable=False),
        Column("dept_code", String(32)),
        Column("region_code", String(12)),
        Column("created_at", DateTime, nullable=False),
    )
    Table(
        "inspection_record", md,
        Column("record_no", String(32), primary_key=True),
        Column("task_no", String(32), nullable=False),
        Column("target_name", String(200), nullable=False),
        Column("target_kind", String(20)),  # 企业 / 个体工商户
        Column("target_id_type", String(20)),
        Column("target_id_no", String(32)),
        Column("inspectors", String(100)),
        Column("accepted_at", DateTime),  # 任务认领
        Column("inspected_at", DateTime),  # 现场检查
        Column("completed_at", DateTime),  # 办结
        Column("conclusion", String(200)),
        Column("status", String(10), nullable=False),  # open / closed
        Column("modified_at", DateTime, nullable=False),
    )
    Table(
        "inspection_log", md,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("record_no", String(32), nullable=False),
        Column("seq", Integer, nullable=False),
        Column("step", String(20), nullable=False),
        Column("operator", String(50)),
        Column("dept", String(100)),
        Column("note", String(500)),
        Column("begin_time", DateTime),
        Column("end_time", DateTime),
    )
    Table(
        "attachment", md,
        Column("att_id", String(40), primary_key=True),
        Column("record_no", String(32), nullable=False),
        Column("kind", String(10), nullable=False),  # notice / onsite / result
        Column("title", String(200), nullable=False),
        Column("original_name", String(200), nullable=False),
        Column("rel_path", String(300), nullable=False),  # under the files folder
        Column("byte_size", Integer),
        Column("content_type", String(100)),
        Column("uploaded_at", DateTime),
    )
    return md


# -------------------------------------------------------------------------- guidang.yaml entries


# What a step row holds, in the order `_steps` takes a system's column names.
_STEP_FIELDS = ("name", "actor", "department", "opinion", "started_at", "ended_at")


def _steps(table: str, key: str, order: str, *columns: str) -> dict[str, Any]:
    """`steps_query` and `step_columns` of an entry: the 办理环节 rows of one matter, in order, one
    column per `_STEP_FIELDS` field (both systems keep their steps that way)."""
    return {
        "steps_query": f"SELECT {', '.join(columns)} FROM {table}\n WHERE {key} = :project_id ORDER BY {order}\n",
        "step_columns": dict(zip(_STEP_FIELDS, columns, strict=True)),
    }


def tzxm_source(url: str = "sqlite:///sources/tzxm.sqlite", *, name: str = "tzxm") -> dict[str, Any]:
    """The guidang.yaml entry for tzxm: the files are a BLOB column, keyed by FJID."""
    return {
        "name": name,
        "kind": "sql",
        "url": url,
        "matters_query": (
            "-- 已办结的审批办件；GXSJ 是平台的更新时间，驱动水位线\n"
            "SELECT a.SPBH, a.SXBM, a.SXBB, a.SXMC, a.SXLX, a.SPBM, a.SPBMDM, a.XZQHDM, a.BJLX,\n"
            "       p.JSDW, p.TYSHXYDM, a.SPJG, a.SPSJ, a.PFWH, a.SLSJ, a.BJSJ, a.GXSJ\n"
            "  FROM XM_APPROVAL a JOIN XM_PROJECT p ON p.XMDM = a.XMDM\n"
            " WHERE a.BLZT = 'BJ' AND a.GXSJ > :since AND a.GXSJ <= :until\n"
            " ORDER BY a.GXSJ, a.SPBH\n"
        ),
        "columns": {
            "project_id": "SPBH",
            "service_code": "SXBM",
            "service_version": "SXBB",
            "service_name": "SXMC",
            "matter_type": "SXLX",
            "handling_type": "BJLX",
            "agency": "SPBM",
            "agency_code": "SPBMDM",
            "region_code": "XZQHDM",
            "applicant_name": "JSDW",
            "applicant_card_number": "TYSHXYDM",
            "result": "SPJG",
            "decided_at": "SPSJ",
            "result_document_number": "PFWH",
            "received_at": "SLSJ",
            "completed_at": "BJSJ",
            "updated_at": "GXSJ",
        },
        "constants": {"applicant_card_type": "统一社会信用代码"},
        "documents_query": (
            "SELECT FJID, SPBH, FJLB, FJMC, WJM, WJLX, WJDX, WJHXZ, FJNR\n"
            "  FROM XM_ATTACHMENT WHERE SPBH = :project_id\n"
        ),
        "document_columns": {
            "key": "FJID",
            "group": "FJLB",
            "title": "FJMC",
            "file_name": "WJM",
            "media_type": "WJLX",
            "size": "WJDX",
            "source_sha256": "WJHXZ",
        },
        "content": {"kind": "blob", "column": "FJNR"},
        "group_values": {"01": "申报", "02": "过程", "03": "结果"},
        **_steps("XM_SPLC", "SPBH", "SXH", "HJMC", "BLR", "BLBM", "BLYJ", "KSSJ", "JSSJ"),
        "timezone": "Asia/Shanghai",
        "ack_statement": (
            "UPDATE XM_APPROVAL SET GDZT = '1', GDDH = :archival_code, GDSJ = CURRENT_TIMESTAMP\n"
            " WHERE SPBH = :project_id\n"
        ),
        # 应归尽归: the platform's own count of what it completed (BJSJ 办结时间 in [:start, :end)),
        # and the same approvals one by one, which `audit reconcile` holds the archive against.
        "count_query": (
            "SELECT a.SPBM, a.SXLX, count(*) AS BJS\n"
            "  FROM XM_APPROVAL a\n"
            " WHERE a.BLZT = 'BJ' AND a.BJSJ >= :start AND a.BJSJ < :end\n"
            " GROUP BY a.SPBM, a.SXLX\n"
        ),
        "count_columns": {"agency": "SPBM", "matter_type": "SXLX", "count": "BJS"},
        "list_query": (
            "SELECT a.SPBH, a.SPBM, a.SXLX, a.SXBM, a.BJSJ, a.GXSJ\n"
            "  FROM XM_APPROVAL a\n"
            " WHERE a.BLZT = 'BJ' AND a.BJSJ >= :start AND a.BJSJ < :end\n"
            " ORDER BY a.BJSJ, a.SPBH\n"
        ),
        "list_columns": {"project_id": "SPBH", "agency": "SPBM", "matter_type": "SXLX", "service_code": "SXBM",
                         "completed_at": "BJSJ", "updated_at": "GXSJ"},
    }


def sjjc_source(
    url: str = "sqlite:///sources/sjjc.sqlite", files_root: str = "sources/sjjc_files", *, name: str = "sjjc"
) -> dict[str, Any]:
    """The guidang.yaml entry for sjjc: files are relative paths under `files_root`; every record is
    a 行政检查 (06), which the system does not store, so it is a constant."""
    return {
        "name": name,
        "kind": "sql",
        "url": url,
        "matters_query": (
            "-- 已办结的检查记录；modified_at 驱动水位线\n"
            "SELECT r.record_no, t.item_code, t.item_name, t.dept_name, t.dept_code, t.region_code,\n"
            "       r.target_name, r.target_id_type, r.target_id_no, r.conclusion,\n"
            "       r.accepted_at, r.inspected_at, r.completed_at, r.modified_at\n"
            "  FROM inspection_record r JOIN inspection_task t ON t.task_no = r.task_no\n"
            " WHERE r.status = 'closed' AND r.modified_at > :since AND r.modified_at <= :until\n"
            " ORDER BY r.modified_at, r.record_no\n"
        ),
        "columns": {
            "project_id": "record_no",
            "service_code": "item_code",
            "service_name": "item_name",
            "agency": "dept_name",
            "agency_code": "dept_code",
            "region_code": "region_code",
            "applicant_name": "target_name",
            "applicant_card_type": "target_id_type",
            "applicant_card_number": "target_id_no",
            "result": "conclusion",
            "decided_at": "inspected_at",
            "received_at": "accepted_at",
            "completed_at": "completed_at",
            "updated_at": "modified_at",
        },
        "constants": {"matter_type": "06", "handling_type": "承诺件"},
        "documents_query": (
            "SELECT att_id, record_no, kind, title, original_name, rel_path, byte_size, content_type\n"
            "  FROM attachment WHERE record_no = :project_id\n"
        ),
        "document_columns": {
            "key": "att_id",
            "group": "kind",
            "title": "title",
            "file_name": "original_name",
            "media_type": "content_type",
            "size": "byte_size",
        },
        "content": {"kind": "path", "column": "rel_path", "root": files_root},
        "group_values": {"notice": "申报", "onsite": "过程", "result": "结果"},
        **_steps("inspection_log", "record_no", "seq", "step", "operator", "dept", "note", "begin_time", "end_time"),
        "timezone": "Asia/Shanghai",
        # 应归尽归: closed records per department by completed_at in [:start, :end); 事项类型 is the
        # constant 06, so neither query selects it.
        "count_query": (
            "SELECT t.dept_name, count(*) AS n_completed\n"
            "  FROM inspection_record r JOIN inspection_task t ON t.task_no = r.task_no\n"
            " WHERE r.status = 'closed' AND r.completed_at >= :start AND r.completed_at < :end\n"
            " GROUP BY t.dept_name\n"
        ),
        "count_columns": {"agency": "dept_name", "count": "n_completed"},
        "list_query": (
            "SELECT r.record_no, t.dept_name, t.item_code, r.completed_at, r.modified_at\n"
            "  FROM inspection_record r JOIN inspection_task t ON t.task_no = r.task_no\n"
            " WHERE r.status = 'closed' AND r.completed_at >= :start AND r.completed_at < :end\n"
            " ORDER BY r.completed_at, r.record_no\n"
        ),
        "list_columns": {"project_id": "record_no", "agency": "dept_name", "service_code": "item_code",
                         "completed_at": "completed_at", "updated_at": "modified_at"},
    }
