"""The rows of the two simulated self-built systems (自建系统), written as SQLite databases.

Data are deterministic for a seed (a `random.Random` seeded with a string is stable across runs and
platforms, and the PDFs come from `pdfs.make_pdf`), so two worlds from one seed hold the same rows
and the same bytes. Each system carries its documented defects, listed in the summary the writer
returns, so tests and the demo can show each one ending where it should. The tables themselves and
what guidang is told about them are in `selfbuilt`.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine, insert

from guidang_demo.catalogue import DEMO_DAYS, DEMO_FIRST_DAY, entries_of
from guidang_demo.identities import CODE_CHARS, person_name, resident_id
from guidang_demo.pdfs import make_broken_pdf, make_pdf
from guidang_demo.selfbuilt import SJJC_NAME, TZXM_NAME, sjjc_metadata, tzxm_metadata
from schemas.findings import GuidangError

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
    return "91330106" + "".join(rng.choice(CODE_CHARS) for _ in range(10))


def _resident_id(rng: random.Random) -> str:
    return resident_id(rng, born_from=date(1960, 1, 1), span_days=365 * 40, areas=("330106",))


def _person(rng: random.Random) -> str:
    return person_name(rng, _SURNAMES, _GIVEN)


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
    first_day: date = DEMO_FIRST_DAY,
    days: int = DEMO_DAYS,
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
    entries = entries_of("tzxm")
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
    first_day: date = DEMO_FIRST_DAY,
    days: int = DEMO_DAYS,
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
    entries = entries_of("sjjc")
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
