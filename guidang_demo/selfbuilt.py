"""Two simulated self-built systems (自建系统) with table layouts of their own, and their guidang.yaml entries.

The point of the pair is that they differ in everything a configuration has to absorb: one is an
older platform with upper-case pinyin names, status codes and the files in a BLOB column
(投资项目在线审批监管平台, `tzxm`); the other a newer system with snake_case English names and the
files on disk under a folder (双随机一公开 inspection system, `sjjc`). `tzxm_source` / `sjjc_source`
are the only description guidang gets of either: `SqlConnector` reads both with no code of their own.

Data are deterministic for a seed (a `random.Random` seeded with a string is stable across runs and
platforms, and the PDFs come from `pdfs.make_pdf`), so two worlds from one seed hold the same rows
and the same bytes. Each system carries its documented defects, listed in the summary the writer
returns, so tests and the demo can show each one ending where it should.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    select,
)
from sqlalchemy.dialects.mysql import LONGBLOB

from guidang_demo.catalogue import DEMO_CATALOGUE, CatalogueEntry
from guidang_demo.pdfs import make_broken_pdf, make_pdf
from schemas.findings import GuidangError

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


def system_metadata(system: System, *, fold_case: bool = False) -> MetaData:
    return tzxm_metadata(fold_case=fold_case) if system == "tzxm" else sjjc_metadata(fold_case=fold_case)


# -------------------------------------------------------------------------- guidang.yaml entries


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
            "SELECT FJID, FJLB, FJMC, WJM, WJLX, WJDX, WJHXZ, FJNR\n"
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
        "steps_query": (
            "SELECT HJMC, BLR, BLBM, BLYJ, KSSJ, JSSJ FROM XM_SPLC\n"
            " WHERE SPBH = :project_id ORDER BY SXH\n"
        ),
        "step_columns": {
            "name": "HJMC", "actor": "BLR", "department": "BLBM", "opinion": "BLYJ",
            "started_at": "KSSJ", "ended_at": "JSSJ",
        },
        "timezone": "Asia/Shanghai",
        "ack_statement": (
            "UPDATE XM_APPROVAL SET GDZT = '1', GDDH = :archival_code, GDSJ = CURRENT_TIMESTAMP\n"
            " WHERE SPBH = :project_id\n"
        ),
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
            "SELECT att_id, kind, title, original_name, rel_path, byte_size, content_type\n"
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
        "steps_query": (
            "SELECT step, operator, dept, note, begin_time, end_time FROM inspection_log\n"
            " WHERE record_no = :project_id ORDER BY seq\n"
        ),
        "step_columns": {
            "name": "step", "actor": "operator", "department": "dept", "opinion": "note",
            "started_at": "begin_time", "ended_at": "end_time",
        },
        "timezone": "Asia/Shanghai",
    }


# -------------------------------------------------------------------------- data pools

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
_GIVEN = (
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇",
    "艳", "杰", "涛", "明", "超", "秀英", "建华",
)
_FIRM_WORDS = (
    "西溪", "之江", "文三", "蒋村", "留下", "转塘", "三墩", "古荡", "翠苑",
    "北山", "灵隐", "双浦",
)
_FIRM_TRADES = (
    "科技", "置业", "智能制造", "生物医药", "新能源", "数字科技", "文化创意",
    "供应链", "环保工程", "餐饮管理",
)
_SHOP_TRADES = (
    "小吃店", "面馆", "便利店", "烘焙坊", "水果店", "茶饮店", "熟食店", "快餐店",
)
_PROJECT_KINDS = (
    "研发中心建设项目", "智能化改造项目", "产业园一期工程", "厂房扩建项目", "数据中心项目",
    "总部大楼建设项目",
)
_STREETS = (
    "文一西路", "天目山路", "紫金港路", "五常大道", "留和路", "西溪路", "古墩路",
    "余杭塘路",
)
_CREDIT_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"

_TZXM_DOCS = {
    "01": ("项目申请报告", "项目核准申请表", "营业执照副本", "用地预审意见", "环境影响评价批复", "节能审查意见"),
    "02": ("受理通知书", "专家评审意见", "现场踏勘记录", "补正材料通知书"),
    "03": ("审批意见告知书",),  # plus 项目核准批复 or 项目备案证明, after the matter
}
_SJJC_DOCS = {
    "notice": ("检查任务通知书", "检查事项清单"),
    "onsite": ("现场检查记录", "现场检查照片", "检查人员执法证件", "询问笔录"),
    "result": ("检查结果告知书", "检查结果公示截图", "责令整改通知书"),
}


def _credit_code(rng: random.Random) -> str:
    return "91330106" + "".join(rng.choice(_CREDIT_CHARS) for _ in range(10))


def _resident_id(rng: random.Random) -> str:
    """A well-formed (check digit right) but invented resident identity number."""
    born = date(1960, 1, 1) + timedelta(days=rng.randrange(365 * 40))
    body = f"330106{born:%Y%m%d}{rng.randrange(1000):03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    check = "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]
    return body + check


def _person(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + rng.choice(_GIVEN)


def _moment(rng: random.Random, first_day: date, days: int) -> datetime:
    day = first_day + timedelta(days=rng.randrange(days))
    return datetime.combine(day, time(8, 30)) + timedelta(seconds=rng.randrange(9 * 3600))


def _pick_documents(rng: random.Random, pools: dict[str, tuple[str, ...]], result_key: str) -> list[tuple[str, str]]:
    """2–6 (group, title) pairs, the main result first, no title twice (file names must stay unique)."""
    count = rng.randint(2, 6)
    chosen = [(result_key, pools[result_key][0])]  # the decision itself is always there
    candidates = [(g, t) for g, titles in pools.items() for t in titles if (g, t) != chosen[0]]
    chosen += rng.sample(candidates, count - 1)
    order = list(pools)
    return sorted(chosen, key=lambda gt: (order.index(gt[0]), pools[gt[0]].index(gt[1])))


def _entries(source: str) -> list[CatalogueEntry]:
    return [e for e in DEMO_CATALOGUE if e.source == source]


def _refuse_existing(path: Path) -> None:
    if path.exists():
        raise GuidangError(f"{path} already exists; the demo writers only create databases anew")


# -------------------------------------------------------------------------- writers


def write_tzxm(
    db_path: Path,
    files_root: Path | None = None,
    *,
    seed: int = 2026,
    count: int = 60,
    first_day: date = date(2026, 11, 20),
    days: int = 6,
) -> dict[str, Any]:
    """Write the tzxm SQLite database with `count` completed approvals (plus a few still in progress
    that the configured query must leave out). `files_root` is unused: tzxm keeps files in a BLOB.

    Defects: one attachment with a NULL BLOB (→ DocumentUnavailable) and one truncated PDF whose
    SHA-256 in WJHXZ matches the truncated bytes (→ the packager's broken-PDF check).
    """
    del files_root
    db_path = Path(db_path)
    _refuse_existing(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"guidang-tzxm:{seed}")
    entries = _entries("tzxm")
    in_progress = max(1, count // 10)
    completions = sorted(_moment(rng, first_day, days) for _ in range(count))
    null_blob_matter, broken_matter = rng.sample(range(count), 2)

    projects, approvals, steps, attachments = [], [], [], []
    defects: list[dict[str, Any]] = []
    total_bytes = 0
    fjid = lcid = 0
    for i in range(count + in_progress):
        done = i < count
        entry = entries[rng.randrange(len(entries))]
        firm = f"杭州{rng.choice(_FIRM_WORDS)}{rng.choice(_FIRM_TRADES)}有限公司"
        made = (completions[i] if done else _moment(rng, first_day, days)) - timedelta(days=rng.randint(4, 25))
        # 项目代码 after the national scheme: 年月-区划-行业-类型(01 核准, 03 备案)-流水号
        industry, kind = rng.choice(("04", "07", "13", "34")), "01" if entry.matter_type == "01" else "03"
        xmdm = f"{made:%y%m}-330106-{industry}-{kind}-{rng.randrange(10**6):06d}"
        spbh = f"TZ{made:%Y%m%d}{i + 1:04d}"
        projects.append({
            "XMDM": xmdm, "XMMC": f"{firm.removeprefix('杭州').removesuffix('有限公司')}{rng.choice(_PROJECT_KINDS)}",
            "JSDW": firm, "TYSHXYDM": _credit_code(rng), "FDDBR": _person(rng),
            "JSDD": f"西湖区{rng.choice(_STREETS)}{rng.randint(1, 999)}号", "ZTZ": rng.randint(500, 80000),
            "CJSJ": made,
        })
        submitted = made + timedelta(hours=rng.randint(1, 48))
        accepted = submitted + timedelta(hours=rng.randint(1, 24))
        approved = (completions[i] if done else accepted) - timedelta(minutes=rng.randint(40, 240))
        completed = completions[i] if done else None
        updated = (completed if done else accepted + timedelta(days=1)) + timedelta(minutes=rng.randint(1, 30))
        approve = entry.service_code.endswith("0101")
        approvals.append({
            "SPBH": spbh, "XMDM": xmdm, "SXBM": entry.service_code, "SXBB": "3", "SXMC": entry.service_name,
            "SXLX": entry.matter_type, "SPBM": entry.agency, "SPBMDM": entry.agency_code, "XZQHDM": "330106",
            "BJLX": "承诺件", "BLZT": "BJ" if done else "SL", "SBSJ": submitted, "SLSJ": accepted,
            "SPSJ": approved if done else None, "BJSJ": completed,
            "SPJG": ("准予核准" if approve else "予以备案") if done else None,
            "PFWH": (f"西发改{'核' if approve else '备'}〔{approved.year}〕{i + 1}号") if done else None,
            "GXSJ": updated, "GDZT": "0", "GDDH": None, "GDSJ": None,
        })
        officer = _person(rng)
        plan = [("申请", firm, None, submitted, submitted), ("受理", officer, "予以受理", accepted, accepted)]
        if done:
            plan += [
                ("审查", officer, "材料齐全，符合要求", accepted, approved - timedelta(minutes=30)),
                ("决定", _person(rng), approvals[-1]["SPJG"], approved - timedelta(minutes=30), approved),
                ("办结", officer, "办结", approved, completed),
            ]
        for seq, (step, actor, opinion, start, end) in enumerate(plan, 1):
            lcid += 1
            steps.append({
                "LCID": lcid, "SPBH": spbh, "SXH": seq, "HJMC": step, "BLR": actor,
                "BLBM": None if step == "申请" else entry.agency, "BLYJ": opinion, "KSSJ": start, "JSSJ": end,
            })
        if not done:
            continue
        pools = {**_TZXM_DOCS, "03": ("项目核准批复" if approve else "项目备案证明", *_TZXM_DOCS["03"])}
        picked = _pick_documents(rng, pools, "03")
        broken_doc = rng.randrange(len(picked)) if i == broken_matter else -1
        null_doc = rng.randrange(len(picked)) if i == null_blob_matter else -1
        for n, (group, title) in enumerate(picked):
            fjid += 1
            lines = ["Investment project approval platform (TZXM)", f"Approval no: {spbh}", f"Project code: {xmdm}",
                     f"Attachment FJID {fjid}, category {group}", f"Uploaded {updated:%Y-%m-%d}"]
            data = make_broken_pdf(lines) if n == broken_doc else make_pdf(lines, pages=rng.randint(1, 3))
            file_name = f"{title}.pdf"
            if n == broken_doc:
                defects.append({"kind": "broken-pdf", "project_id": spbh, "document": fjid, "file_name": file_name})
            if n == null_doc:
                defects.append({"kind": "null-blob", "project_id": spbh, "document": fjid, "file_name": file_name})
            total_bytes += len(data)
            attachments.append({
                "FJID": fjid, "SPBH": spbh, "FJLB": group, "FJMC": title, "WJM": file_name,
                "WJLX": "application/pdf", "WJDX": len(data), "WJHXZ": hashlib.sha256(data).hexdigest(),
                "FJNR": None if n == null_doc else data, "SCSJ": accepted if group == "01" else approved,
            })

    _write_rows(db_path, tzxm_metadata(), {
        "XM_PROJECT": projects, "XM_APPROVAL": approvals, "XM_SPLC": steps, "XM_ATTACHMENT": attachments,
    })
    done_rows = approvals[:count]
    return {
        "system": "tzxm",
        "name": TZXM_NAME,
        "database": str(db_path),
        "matters": count,
        "in_progress": in_progress,
        "documents": len(attachments),
        "bytes": total_bytes,
        "project_ids": [a["SPBH"] for a in done_rows],
        "service_codes": dict(sorted(Counter(a["SXBM"] for a in done_rows).items())),
        "agencies": sorted({a["SPBM"] for a in done_rows}),
        "matter_types": sorted({a["SXLX"] for a in done_rows}),
        "defects": sorted(defects, key=lambda d: d["kind"]),
    }


def write_sjjc(
    db_path: Path,
    files_root: Path,
    *,
    seed: int = 2026,
    count: int = 80,
    first_day: date = date(2026, 11, 20),
    days: int = 6,
) -> dict[str, Any]:
    """Write the sjjc SQLite database and its files under `files_root` (paths in the table are
    relative to it). Defects: one attachment row whose file was never written (→ DocumentUnavailable)
    and one record completed before it was accepted (→ InvalidMatter, dates out of order)."""
    db_path, files_root = Path(db_path), Path(files_root)
    _refuse_existing(db_path)
    if files_root.exists() and any(files_root.iterdir()):
        raise GuidangError(f"{files_root} is not empty; the demo writers only create file folders anew")
    db_path.parent.mkdir(parents=True, exist_ok=True)
    files_root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"guidang-sjjc:{seed}")
    entries = _entries("sjjc")
    completions = sorted(_moment(rng, first_day, days) for _ in range(count))
    missing_matter, disordered_matter = rng.sample(range(count), 2)

    tasks: dict[str, dict[str, Any]] = {}
    records, logs, attachments = [], [], []
    defects: list[dict[str, Any]] = []
    total_bytes = 0
    log_id = 0
    for i, completed in enumerate(completions):
        entry = entries[rng.randrange(len(entries))]
        task_no = f"RW{first_day:%Y}{entries.index(entry) + 1:02d}{rng.randint(1, 4):02d}"
        tasks.setdefault(task_no, {
            "task_no": task_no, "task_name": f"{first_day:%Y}年第{task_no[-1]}批{entry.service_name}双随机抽查",
            "item_code": entry.service_code, "item_name": entry.service_name, "dept_name": entry.agency,
            "dept_code": entry.agency_code, "region_code": "330106",
            "created_at": datetime.combine(first_day - timedelta(days=30), time(9)),
        })
        record_no = f"JC{completed:%Y%m%d}{i + 1:04d}"
        shop = rng.random() < 0.4 or i == disordered_matter  # 个体工商户: the operator's own identity number
        if shop:
            target = f"西湖区{rng.choice(_FIRM_WORDS)}{rng.choice(_SHOP_TRADES)}（{_person(rng)}）"
            id_type, id_no = "居民身份证", _resident_id(rng)
        else:
            target = f"杭州{rng.choice(_FIRM_WORDS)}{rng.choice(_FIRM_TRADES)}有限公司"
            id_type, id_no = "统一社会信用代码", _credit_code(rng)
        accepted = completed - timedelta(days=rng.randint(2, 12), minutes=rng.randint(0, 90))
        inspected = accepted + timedelta(minutes=int((completed - accepted).total_seconds() // 120))
        if i == disordered_matter:
            accepted = completed + timedelta(days=2)  # the defect: 办结 before 认领
            defects.append({"kind": "dates-out-of-order", "project_id": record_no})
        modified = completed + timedelta(minutes=rng.randint(1, 30))
        conclusion = rng.choice(("未发现问题", "未发现问题", "发现问题已责令整改", "发现问题已当场整改"))
        inspectors = f"{_person(rng)}、{_person(rng)}"
        records.append({
            "record_no": record_no, "task_no": task_no, "target_name": target,
            "target_kind": "个体工商户" if shop else "企业", "target_id_type": id_type, "target_id_no": id_no,
            "inspectors": inspectors, "accepted_at": accepted, "inspected_at": inspected, "completed_at": completed,
            "conclusion": conclusion, "status": "closed", "modified_at": modified,
        })
        plan = [("任务受理", accepted, accepted), ("现场检查", inspected, inspected + timedelta(hours=2)),
                ("检查处理决定", completed - timedelta(hours=1), completed), ("结果公示", completed, completed)]
        for seq, (step, start, end) in enumerate(plan, 1):
            log_id += 1
            logs.append({
                "id": log_id, "record_no": record_no, "seq": seq, "step": step, "operator": inspectors.split("、")[0],
                "dept": entry.agency, "note": conclusion if step == "检查处理决定" else None,
                "begin_time": start, "end_time": end,
            })
        picked = _pick_documents(rng, _SJJC_DOCS, "result")
        missing_doc = rng.randrange(len(picked)) if i == missing_matter else -1
        for n, (kind, title) in enumerate(picked):
            att_id = f"A{record_no[2:]}{n + 1:02d}"
            rel_path = f"{completed:%Y/%m}/{record_no}/{att_id}.pdf"
            data = make_pdf(["Random inspection system (SJJC)", f"Record no: {record_no}", f"Task: {task_no}",
                             f"Attachment {att_id}, kind {kind}"], pages=rng.randint(1, 2))
            file_name = f"{title}.pdf"
            if n == missing_doc:
                defects.append({"kind": "missing-file", "project_id": record_no, "document": att_id,
                                "file_name": file_name, "path": rel_path})
            else:
                target_path = files_root / rel_path
                target_path.parent.mkdir(parents=True, exist_ok=True)
                target_path.write_bytes(data)
                total_bytes += len(data)
            attachments.append({
                "att_id": att_id, "record_no": record_no, "kind": kind, "title": title, "original_name": file_name,
                "rel_path": rel_path, "byte_size": len(data), "content_type": "application/pdf",
                "uploaded_at": inspected if kind != "result" else completed,
            })
    # a record still open: the configured query must not deliver it
    records.append({
        "record_no": f"JC{completions[-1]:%Y%m%d}{count + 1:04d}", "task_no": next(iter(tasks)),
        "target_name": "杭州北山科技有限公司", "target_kind": "企业", "target_id_type": "统一社会信用代码",
        "target_id_no": _credit_code(rng), "inspectors": _person(rng), "accepted_at": completions[-1],
        "inspected_at": None, "completed_at": None, "conclusion": None, "status": "open",
        "modified_at": completions[-1] + timedelta(minutes=5),
    })

    _write_rows(db_path, sjjc_metadata(), {
        "inspection_task": sorted(tasks.values(), key=lambda t: t["task_no"]), "inspection_record": records,
        "inspection_log": logs, "attachment": attachments,
    })
    done = records[:count]
    return {
        "system": "sjjc",
        "name": SJJC_NAME,
        "database": str(db_path),
        "files_root": str(files_root),
        "matters": count,
        "in_progress": 1,
        "documents": len(attachments),
        "bytes": total_bytes,
        "project_ids": [r["record_no"] for r in done],
        "service_codes": dict(sorted(Counter(tasks[r["task_no"]]["item_code"] for r in done).items())),
        "agencies": sorted({tasks[r["task_no"]]["dept_name"] for r in done}),
        "matter_types": ["06"],
        "defects": sorted(defects, key=lambda d: d["kind"]),
    }


def _write_rows(db_path: Path, metadata: MetaData, rows: dict[str, list[dict[str, Any]]]) -> None:
    engine = create_engine(f"sqlite:///{db_path}")
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            for name, table_rows in rows.items():
                if table_rows:
                    conn.execute(insert(metadata.tables[name]), table_rows)
    finally:
        engine.dispose()


def copy_system(system: System, sqlite_path: Path, target_url: str, *, batch: int = 50) -> dict[str, int]:
    """Load a demo system written by `write_tzxm` / `write_sjjc` into another database (PostgreSQL,
    MariaDB) with the same DDL, as that database would have it; returns rows copied per table.

    The target database must exist and hold none of the tables. Used by the server tests and for
    trying guidang against a real department-style server.
    """
    source = create_engine(f"sqlite:///{sqlite_path}")
    target = create_engine(target_url)
    try:
        fold = target.dialect.name == "postgresql"
        src_md, dst_md = system_metadata(system), system_metadata(system, fold_case=fold)
        dst_md.create_all(target)
        copied: dict[str, int] = {}
        with source.connect() as src, target.begin() as dst:
            for src_table in src_md.sorted_tables:
                dst_table = dst_md.tables[src_table.name.lower() if fold else src_table.name]
                names = [(c.name, c.name.lower() if fold else c.name) for c in src_table.columns]
                result = src.execute(select(src_table)).mappings()
                copied[src_table.name] = 0
                while chunk := result.fetchmany(batch):
                    dst.execute(insert(dst_table), [{d: row[s] for s, d in names} for row in chunk])
                    copied[src_table.name] += len(chunk)
        return copied
    finally:
        source.dispose()
        target.dispose()
