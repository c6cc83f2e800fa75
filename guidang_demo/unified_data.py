"""The unified system's demo dataset: completed 办件 records and their PDFs, written as plain files.

The records follow the 办件 exchange tables provincial platforms publish (uppercase field names,
PROJID, SERVICECODE, PROCESS, MATERIALS …) so that the connector is written against the shape a
real interface has, not against a shape invented for the tests. Everything is drawn from one seeded
`random.Random` and written with sorted, fixed formatting, so two datasets from one seed are
byte-identical: a test or a demo run can be repeated and compared file by file.

A handful of matters carry a defect on purpose (see `DEFECT_KINDS`); the summary names them so the
tests and the demo can say which quarantine reason each one must end with.
"""

from __future__ import annotations

import hashlib
import json
import random
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from guidang_demo.catalogue import DEMO_CATALOGUE, DEMO_DAYS, DEMO_FIRST_DAY, CatalogueEntry, entries_of
from guidang_demo.identities import person_name, resident_id, uscc
from guidang_demo.ofds import licence_variant, make_ofd
from guidang_demo.office import office_attachment
from guidang_demo.pdfs import make_pdf
from guidang_demo.unified_defects import DEFECT_KINDS, inject_defects

# Asia/Shanghai has had no daylight saving since 1991; a fixed offset keeps the writer free of tzdata.
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
AREA_CODE = "330106"  # 西湖区
MATTERS_FILE = "matters.json"
CATALOGUE_FILE = "catalogue.json"
SUMMARY_FILE = "summary.json"
FILES_DIR = "files"


_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹"
_GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明", "超",
          "秀英", "华", "平", "刚", "桂英", "建国", "晓燕", "志强", "海燕", "文", "斌", "婷", "宇", "浩"]
_ID_AREAS = ["330106", "330102", "330105", "330108", "330109", "330110", "330122", "330182", "330302", "340102"]
_FIRM_WORDS = ["西溪", "湖畔", "之江", "翠苑", "文新", "古荡", "蒋村", "转塘", "留下", "北山", "灵隐", "三墩"]
_FIRM_TRADES = {
    "330106-XK-0001": ["餐饮管理", "食品", "茶餐厅", "烘焙"],
    "330106-XK-0002": ["大药房", "医药连锁", "药店"],
    "330106-XK-0003": ["建设集团", "建筑工程", "置业"],
    "330106-CF-0001": ["餐饮", "食品商行", "小吃"],
}

# Per service: who applies (person / firm / either), 办件类型, the results it can end in, the
# certificate it issues (if any), the 文号 prefix and the documents each group draws from.
_PROFILES: dict[str, dict[str, Any]] = {
    "330106-XK-0001": {
        "applicant": "either", "handling": "承诺件", "results": [("准予许可", 9), ("不予许可", 1)],
        "cert": ("食品经营许可证", "JY1330106"), "doc_no": "杭西市监食许",
        "申报": ["食品经营许可申请书", "营业执照", "法定代表人身份证明", "经营场所平面图", "食品安全管理制度"],
        "过程": ["受理通知书", "现场核查记录", "审查意见表"],
        "结果": ["准予行政许可决定书", "送达回证"],
    },
    "330106-XK-0002": {
        "applicant": "firm", "handling": "承诺件", "results": [("准予许可", 8), ("不予许可", 2)],
        "cert": ("药品经营许可证", "ZB1330106"), "doc_no": "杭西市监药许",
        "申报": ["药品经营许可申请表", "营业执照", "执业药师资格证明", "质量管理文件目录"],
        "过程": ["受理通知书", "现场检查报告", "审查意见表"],
        "结果": ["准予行政许可决定书", "送达回证"],
    },
    "330106-XK-0003": {
        "applicant": "firm", "handling": "承诺件", "results": [("准予许可", 1)],
        "cert": ("建筑工程施工许可证", "330106202611"), "doc_no": "杭西建施许",
        "申报": ["建筑工程施工许可申请表", "建设工程规划许可证", "施工合同", "安全施工措施资料"],
        "过程": ["受理通知书", "审查意见表"],
        "结果": ["准予行政许可决定书", "建筑工程施工许可证"],
    },
    "330106-QR-0001": {
        "applicant": "person", "handling": "即办件", "results": [("准予登记", 1)],
        "cert": ("营业执照", "92330106MA"), "doc_no": "杭西市监个登",
        "申报": ["个体工商户登记申请书", "经营者身份证明", "经营场所使用证明"],
        "过程": ["受理通知书"],
        "结果": ["准予设立登记通知书", "营业执照"],
    },
    "330106-JF-0001": {
        "applicant": "person", "handling": "承诺件", "results": [("准予给付", 4), ("不予给付", 1)],
        "cert": None, "doc_no": "杭西民低保",
        "申报": ["最低生活保障申请书", "家庭收入财产声明", "户口簿", "授权核查书"],
        "过程": ["入户调查表", "民主评议记录", "公示材料"],
        "结果": ["最低生活保障审批决定书"],
    },
    "330106-CF-0001": {
        "applicant": "either", "handling": "承诺件", "results": [("作出行政处罚决定", 1)],
        "cert": None, "doc_no": "杭西市监罚",
        "申报": ["立案审批表", "现场检查笔录"],
        "过程": ["询问笔录", "调查终结报告", "行政处罚告知书", "陈述申辩笔录"],
        "结果": ["行政处罚决定书", "送达回证"],
    },
    "330106-GG-0001": {
        "applicant": "person", "handling": "即办件", "results": [("已出具查询结果", 1)],
        "cert": None, "doc_no": "杭西民婚查",
        "申报": ["婚姻登记档案查询申请表", "查询人身份证明"],
        "过程": [],
        "结果": ["婚姻登记档案查询结果"],
    },
    "330106-QT-0001": {
        "applicant": "person", "handling": "承诺件", "results": [("认定合格", 5), ("认定不合格", 1)],
        "cert": ("职业技能等级证书", "S000033010600"), "doc_no": "杭西人社技",
        "申报": ["职业技能等级认定申请表", "身份证明", "学历证明"],
        "过程": ["理论知识考试成绩单", "技能操作考核记录"],
        "结果": ["职业技能等级认定结果通知书"],
    },
}
_SHORT_GROUP = {"申报": "申报", "过程": "过程", "结果": "结果"}


def write_unified_dataset(
    data_dir: Path,
    *,
    seed: int = 2026,
    count: int = 180,
    first_day: date = DEMO_FIRST_DAY,
    days: int = DEMO_DAYS,
) -> dict[str, Any]:
    """Write `count` completed matters (plus a few still in progress, which the list endpoint must
    not serve) and their PDFs under `data_dir`; return the summary (also written as summary.json).

    The summary holds `completed`, `in_progress`, `documents`, `bytes`, `first_updated` and
    `last_updated` (ISO), `by_service` counts and `defects`: {kind: [PROJID, ...]} for every kind
    of `DEFECT_KINDS`.
    """
    if count < len(DEFECT_KINDS) + 2:
        raise ValueError(f"count must be at least {len(DEFECT_KINDS) + 2} so that every defect kind has a matter")
    if days < 1:
        raise ValueError("days must be at least 1")
    data_dir = Path(data_dir)
    files_dir = data_dir / FILES_DIR
    files_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    services = entries_of("unified")
    in_progress = max(1, count // 30)

    matters: list[dict[str, Any]] = []
    payloads: dict[str, bytes] = {}  # FILEID -> bytes to write
    seq_by_day: dict[str, int] = {}
    for i in range(count + in_progress):
        # The first len(services) matters walk the catalogue so that every matter type occurs.
        entry = services[i] if i < len(services) else rng.choice(services)
        completed = i < count
        record, docs = _make_matter(rng, entry, completed, first_day, days, seq_by_day)
        matters.append(record)
        payloads.update(docs)

    defects = inject_defects(rng, [m for m in matters if m.get("FINISHTIME")], payloads)

    matters.sort(key=lambda m: m["PROJID"])
    for m in matters:
        for mat in m["MATERIALS"]:
            fid = mat["FILEID"]
            if fid in payloads:
                (files_dir / f"{fid}.pdf").write_bytes(payloads[fid])
    _write_json(data_dir / MATTERS_FILE, matters)
    _write_json(data_dir / CATALOGUE_FILE, catalogue_rows())

    done = [m for m in matters if m.get("FINISHTIME")]
    by_service: dict[str, int] = {}
    for m in done:
        by_service[m["SERVICECODE"]] = by_service.get(m["SERVICECODE"], 0) + 1
    summary: dict[str, Any] = {
        "seed": seed,
        "completed": len(done),
        "in_progress": len(matters) - len(done),
        "documents": sum(len(m["MATERIALS"]) for m in done),
        "bytes": sum(len(b) for b in payloads.values()),
        "first_updated": min(m["UPDATETIME"] for m in done),
        "last_updated": max(m["UPDATETIME"] for m in done),
        "by_service": dict(sorted(by_service.items())),
        "defects": defects,
    }
    _write_json(data_dir / SUMMARY_FILE, summary)
    return summary


def catalogue_rows() -> list[dict[str, str]]:
    """The catalogue endpoint's rows: `DEMO_CATALOGUE` under the interface's field names."""
    return [
        {
            "SERVICECODE": e.service_code,
            "SERVICENAME": e.service_name,
            "SERVICETYPE": e.matter_type,
            "DEPTNAME": e.agency,
            "DEPTCODE": e.agency_code,
        }
        for e in DEMO_CATALOGUE
    ]


def _write_json(path: Path, data: object) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=1, sort_keys=False)
    path.write_bytes((text + "\n").encode("utf-8"))


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds")


def _person_name(rng: random.Random) -> str:
    return person_name(rng, _SURNAMES, _GIVEN)


def _id_number(rng: random.Random) -> str:
    return resident_id(rng, born_from=date(1950, 1, 1), span_days=365 * 55, areas=_ID_AREAS)


def _applicant(rng: random.Random, entry: CatalogueEntry, kind: str) -> tuple[str, str, str]:
    if kind == "either":
        kind = rng.choice(["person", "firm"])
    if kind == "firm":
        trade = rng.choice(_FIRM_TRADES.get(entry.service_code, ["商贸"]))
        return f"杭州{rng.choice(_FIRM_WORDS)}{trade}有限公司", "统一社会信用代码", uscc(rng, AREA_CODE)
    return _person_name(rng), "身份证", _id_number(rng)


def _weighted(rng: random.Random, options: list[tuple[str, int]]) -> str:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


def _make_matter(
    rng: random.Random,
    entry: CatalogueEntry,
    completed: bool,
    first_day: date,
    days: int,
    seq_by_day: dict[str, int],
) -> tuple[dict[str, Any], dict[str, bytes]]:
    profile = _PROFILES.get(entry.service_code) or _PROFILES["330106-QT-0001"]
    handling = profile["handling"]
    # Times are drawn on a working clock (08:30–17:30, 540 minutes a day) so that no step of a
    # matter happens at night; only the automatic UPDATETIME may run a little past closing time.
    day_minutes = 540
    total = days * day_minutes
    day = rng.randrange(days)
    w_received = day * day_minutes + rng.randrange(0, 420)
    w_applied = max(0, w_received - rng.randrange(5, 180))
    if handling == "即办件":
        w_span = rng.randrange(10, 90)
    else:
        w_span = rng.randrange(30, max(31, (days - day) * day_minutes - 60))
    w_finished = min(total - 30, w_received + w_span)
    w_finished = max(w_finished, w_received + 10)
    received = _working_time(first_day, w_received)
    applied = _working_time(first_day, w_applied)
    finished = _working_time(first_day, w_finished)
    updated = finished + timedelta(minutes=rng.randrange(1, 30), seconds=rng.randrange(60))

    day_key = received.strftime("%Y%m%d")
    seq_by_day[day_key] = seq_by_day.get(day_key, 0) + 1
    projid = f"{AREA_CODE}{day_key}{seq_by_day[day_key]:06d}"
    name, card_type, card_no = _applicant(rng, entry, profile["applicant"])
    result = _weighted(rng, profile["results"])
    positive = not result.startswith("不予") and "不合格" not in result

    # Step boundaries: 申请 → 受理 → 审查 → 决定 → 送达, evenly cut with jitter inside [received, finished].
    staff = [_person_name(rng) for _ in range(4)]
    cut = [_working_time(first_day, w_received + (w_finished - w_received) * f) for f in (0.0, 0.15, 0.6, 0.85, 1.0)]
    steps = [
        ("申请", name, "浙江政务服务网", "提交申请", applied, received),
        ("受理", staff[0], entry.agency, "材料齐全，予以受理", cut[0], cut[1]),
        ("审查", staff[1], entry.agency, "经审查，符合规定" if positive else "经审查，不符合规定", cut[1], cut[2]),
        ("决定", staff[2], entry.agency, f"{result}", cut[2], cut[3]),
        ("送达", staff[3], entry.agency, "结果已送达申请人", cut[3], cut[4]),
    ]
    if handling == "即办件":
        steps = [s for s in steps if s[0] != "审查"]
    if not completed:
        steps = steps[:2]
    process = [
        {"NODENAME": n, "HANDLER": h, "DEPTNAME": d, "OPINION": o, "STARTTIME": _iso(s), "ENDTIME": _iso(e)}
        for n, h, d, o, s, e in steps
    ]

    record: dict[str, Any] = {
        "PROJID": projid,
        "SERVICECODE": entry.service_code,
        "SERVICEVERSION": str(rng.randrange(1, 6)),
        "SERVICENAME": entry.service_name,
        "SERVICETYPE": entry.matter_type,
        "PROJECTTYPE": handling,
        "DEPTNAME": entry.agency,
        "DEPTCODE": entry.agency_code,
        "AREACODE": AREA_CODE,
        "APPLYERNAME": name,
        "APPLYERPAGETYPE": card_type,
        "APPLYERPAGECODE": card_no,
        "RECEIVETIME": _iso(received),
    }
    if completed:
        year = finished.year
        record |= {
            "TRANSACTTIME": _iso(cut[3]),
            "FINISHTIME": _iso(finished),
            "RESULT": result,
            "RESULTCODE": f"{profile['doc_no']}〔{year}〕{rng.randrange(1, 2000)}号",
        }
        cert = profile["cert"]
        if cert and positive:
            record |= {"CERTNAME": cert[0], "CERTCODE": f"{cert[1]}{rng.randrange(10**5, 10**6)}"}
        else:
            record |= {"CERTNAME": None, "CERTCODE": None}
    else:
        record |= {"TRANSACTTIME": None, "FINISHTIME": None, "RESULT": None, "RESULTCODE": None,
                   "CERTNAME": None, "CERTCODE": None}
    record["UPDATETIME"] = _iso(updated if completed else max(received, applied) + timedelta(minutes=5))

    # Documents: 2–6, at least one 申报 and (when completed) at least one 结果.
    groups = ["申报", "过程", "结果"] if completed else ["申报"]
    total = rng.randrange(2, 7)
    chosen: list[tuple[str, str]] = []
    if completed:
        chosen.append(("结果", rng.choice(profile["结果"])))
    chosen.append(("申报", rng.choice(profile["申报"])))
    pool = [(g, t) for g in groups for t in profile[g] if (g, t) not in chosen]
    rng.shuffle(pool)
    chosen += pool[: max(0, total - len(chosen))]
    order = {"申报": 0, "过程": 1, "结果": 2}
    chosen.sort(key=lambda gt: (order[gt[0]], profile[gt[0]].index(gt[1])))

    materials = []
    payloads: dict[str, bytes] = {}
    for n, (group, title) in enumerate(chosen, start=1):
        fid = f"{projid}-{n:02d}"
        lines = [
            f"PROJID {projid}",
            f"SERVICECODE {entry.service_code}",
            f"FILEID {fid}  GROUP {_group_latin(group)}",
            f"DEPTCODE {entry.agency_code}",
            f"seed line {rng.randrange(10**9)}",
        ]
        pages = rng.randrange(1, 4)
        # A licence (行政许可) is issued as a sealed OFD (电子证照 with its 电子印章), as the
        # unified system's licence service does; everything else is a PDF.
        as_ofd = group == "结果" and entry.matter_type == "01"
        # Applicants upload their 申请书 as Word files and their statements and lists as Excel
        # workbooks (office.py); the archive keeps them with a PDF/A rendition (格式转换).
        office = None if as_ofd or group != "申报" else office_attachment(title, lines, pages)
        if as_ofd:
            data, ext, media = (make_ofd([title, *lines], pages=pages, sealed=True, **licence_variant(fid)), "ofd",
                                 "application/ofd")
        elif office is not None:
            data, ext, media = office
        else:
            data, ext, media = make_pdf(lines, pages=pages), "pdf", "application/pdf"
        payloads[fid] = data
        materials.append({
            "FILEID": fid,
            "GROUP": _SHORT_GROUP[group],
            "MATERIALNAME": title,
            "FILENAME": f"{n:02d}-{title}.{ext}",
            "FILETYPE": media,
            "FILESIZE": len(data),
            "SHA256": hashlib.sha256(data).hexdigest(),
        })
    record["PROCESS"] = process
    record["MATERIALS"] = materials
    return record, payloads


def _working_time(first_day: date, minutes: float) -> datetime:
    """The moment `minutes` working minutes (08:30–17:30 days) after `first_day` 08:30, to the second."""
    day, minute = divmod(round(minutes * 60), 540 * 60)
    return datetime.combine(first_day + timedelta(days=day), time(8, 30), SHANGHAI) + timedelta(seconds=minute)


def _group_latin(group: str) -> str:
    return {"申报": "application", "过程": "process", "结果": "result"}[group]
