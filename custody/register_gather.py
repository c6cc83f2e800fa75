"""Registers on demand: a night's or a batch's packages from the ledger, checked against the repository.

A night (`--night DATE`) is every run whose 归档时间 (`as_of`, else its start) falls on DATE in the
configured timezone, and its packages the matters those runs verified; a batch (`--batch ID`) is the
DA/T 93 batch's members. For each package the repository is listed (never read): its completion
marker present, its documents (the files under the 申报材料/过程材料/结果材料 folders, what 元数据's
件数 and 总字节数 count) counted and summed, so the register's totals are compared with the
repository's, package by package. packager/register.py renders the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from connectors.repositories.base import Repository
from ledger import anchors, audit_queries, chain
from ledger.models import MatterRecord, MatterState, Run
from ledger.store import Ledger
from packager.register import RegisterData, Totals
from packager.transfer import TransferRow
from schemas.anchor import Checkpoint
from schemas.config import Settings
from schemas.findings import GuidangError
from schemas.layout import COMPLETION_MARKER, GROUP_FOLDERS
from schemas.metadata import beijing_date
from schemas.personal import mask_personal, personal_names


class NothingToRegister(GuidangError):
    """No such batch, or no package archived that night: the command says so (exit 2)."""


def _night_of(run: Run, zone: ZoneInfo) -> date:
    as_of = (run.parameters or {}).get("as_of")
    moment = datetime.fromisoformat(as_of) if isinstance(as_of, str) else run.started_at
    return moment.astimezone(zone).date()


def _night(ledger: Ledger, settings: Settings, day: date) -> tuple[list[MatterRecord], list[Checkpoint]]:
    zone = ZoneInfo(settings.timezone)
    with ledger.read() as s:
        runs = [r.id for r in audit_queries.all_runs(s) if _night_of(r, zone) == day]
        records = list(audit_queries.verified_by_runs(s, runs))
        points = [cp for cp in anchors.checkpoint_events(s) if cp.run_id in runs]
    if not records:
        raise NothingToRegister(f"no package was archived the night of {day} "
                                f"({len(runs)} run(s) that night in the ledger)")
    return records, points


def _batch(ledger: Ledger, batch_id: str) -> tuple[list[MatterRecord], list[Checkpoint]]:
    with ledger.read() as s:
        records = list(audit_queries.batch_members(s, batch_id))
        begun = audit_queries.batch_event(s, batch_id, "transfer-batch-begun")
        points = [anchors.checkpoint_of(begun)] if begun is not None else []
    if not records:
        raise NothingToRegister(f"no DA/T 93 batch {batch_id!r} in the ledger")
    return records, points


def _fonds_text(settings: Settings, records: Sequence[MatterRecord]) -> str:
    codes = sorted({r.fonds or "" for r in records})
    names = {f.code: f.name for f in settings.fonds}
    return "、".join(f"{c} {names.get(c, '')}".strip() for c in codes)


def repository_totals(repository: Repository, records: Sequence[MatterRecord]) -> tuple[Totals, list[str]]:
    """What the repository holds for these packages, and each package where it differs from the row."""
    packages = files = size = 0
    problems: list[str] = []
    for r in records:
        prefix = (r.package_key or "").rstrip("/") + "/"
        complete, doc_files, doc_bytes = False, 0, 0
        for obj in repository.list(prefix):
            rel = obj.key[len(prefix):]
            if rel == COMPLETION_MARKER:
                complete = True
            elif rel.split("/", 1)[0] in GROUP_FOLDERS:
                doc_files += 1
                doc_bytes += obj.size
        if r.state == MatterState.DESTROYED:  # 已销毁: its documents are expected gone, none may be left
            if doc_files:
                problems.append(f"档号 {r.archival_code}: 已销毁，但存储库仍有文档 {doc_files} 个")
            packages += complete
            files += doc_files
            size += doc_bytes
            continue
        if complete:
            packages += 1
        else:
            problems.append(f"档号 {r.archival_code}: 存储库中没有完整的信息包（无 {COMPLETION_MARKER}）")
        files += doc_files
        size += doc_bytes
        if (doc_files, doc_bytes) != (r.file_count or 0, r.total_bytes or 0):
            problems.append(f"档号 {r.archival_code}: 存储库文档 {doc_files} 个 {doc_bytes} 字节，"
                            f"账本 {r.file_count or 0} 个 {r.total_bytes or 0} 字节")
    return Totals(packages, files, size), problems


def _title(record: MatterRecord, masked: bool) -> str:
    return mask_personal(record.title, personal_names(record.record)) if masked else record.title or ""


def build_register(ledger: Ledger, repository: Repository, settings: Settings, *, night: date | None = None,
                   batch: str | None = None, masked: bool = False) -> RegisterData:
    """`masked`: for a role that sees personal data masked, persons' names in the 题名 are masked too
    (identity numbers and phones are masked in every register by packager.register)."""
    if (night is None) == (batch is None):
        raise ValueError("exactly one of night, batch")
    if night is not None:
        records, points = _night(ledger, settings, night)
        title = f"{night.isoformat()} 夜间归档"
    else:
        records, points = _batch(ledger, batch or "")
        title = f"批次 {batch}"
    gone = {r.id for r in records if r.state == MatterState.DESTROYED}  # counted as held now: no documents
    rows = [
        TransferRow(archival_code=r.archival_code or "", responsible=r.agency,
                    title=_title(r, masked) + ("（已销毁）" if r.id in gone else ""),
                    date=beijing_date(r.completed_at), period=r.retention_period or "", pages=r.page_count or 0,
                    bytes=0 if r.id in gone else r.total_bytes or 0,
                    file_count=0 if r.id in gone else r.file_count or 0, remarks="已销毁" if r.id in gone else "")
        for r in sorted(records, key=lambda r: r.archival_code or "")
    ]
    ledger_totals = Totals(len(rows), sum(r.file_count for r in rows), sum(r.bytes for r in rows),
                           sum(r.pages for r in rows))
    repo_totals, problems = repository_totals(repository, records)
    with ledger.read() as s:
        head_seq, head_hash = chain.chain_head(s)
    now = datetime.now(ZoneInfo(settings.timezone)).replace(microsecond=0)
    return RegisterData(
        title=title, fonds=_fonds_text(settings, records), rows=rows,
        batches={r.archival_code or "": r.batch_id or "" for r in records},
        ledger=ledger_totals, repository=repo_totals, anchors=points,
        generated_at=f"{now.isoformat()}（生成时账本事件 {head_seq}，摘要 {head_hash}）", problems=problems,
    )
