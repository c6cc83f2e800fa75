"""The shared types of the night's stages: the work item triage hands to staging (`Work`) and the
matter staging hands to numbering and transfer (`Staged`), with the two things both ends build from
a matter: its ledger row (`matter_record`) and its 档号 (`archival_code`).

They live below every stage so that each stage imports only the ones before it: triage produces
`Work`, staging consumes it and produces `Staged` (with a provisional 档号 for its precheck),
numbering gives it its 件号 and row, transfer stores it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ledger.models import MatterRecord, MatterState
from night.window import Packed
from retention import compose_archival_code
from schemas.config import Fonds
from schemas.metadata import matter_title
from schemas.model import Appraisal, Matter

if TYPE_CHECKING:  # the packager (pypdf, lxml) loads only where a matter is packaged
    from packager.check_report import CheckReport
    from packager.stage import StagedMatter


@dataclass(slots=True)
class Work:
    """A matter to stage, packed (night/window.py) until its chunk is worked on."""

    packed: Packed
    version: int
    reopened_quarantine: int | None = None

    @classmethod
    def of(cls, m: Matter, version: int, reopened_quarantine: int | None = None) -> Work:
        return cls(Packed.of(m), version, reopened_quarantine)

    @property
    def matter(self) -> Matter:
        """The matter, unpacked: each read builds it anew, so a stage reads it once."""
        return self.packed.load()


@dataclass
class Staged:
    """A matter that passed staging and is waiting for its 件号 (or, on resume, already has one)."""

    matter: Matter
    appraisal: Appraisal
    version: int
    staged: StagedMatter
    record_id: int | None = None
    fonds: Fonds | None = None  # 全宗, as the precheck's provisional 档号 had it; numbering gives the same
    # the precheck's 检测报告 (night/staging.precheck), which the real build renumbers instead of
    # checking the package again; None on resume, where the real build checks it whole
    prechecked: CheckReport | None = None


def archival_code(fonds: Fonds, a: Appraisal, item: int) -> str:
    """档号 of 件号 `item` in the matter's sequence (全宗, 门类, 年度, 保管期限, 机构问题代码)."""
    return compose_archival_code(
        fonds.archival_code_template,
        fonds=fonds.code,
        category=a.category_code,
        year=a.year,
        period=str(a.retention_period),
        org=a.org_code,
        item=item,
    )


def matter_record(m: Matter, a: Appraisal, version: int, run_id: str) -> MatterRecord:
    """The ledger row of a matter as appraised; numbering adds its 件号, 档号 and package key."""
    return MatterRecord(
        source=m.source,
        project_id=m.project_id,
        version=version,
        content_hash=m.content_hash(),
        state=MatterState.NUMBERED,
        service_code=m.service_code,
        service_name=m.service_name[:255],
        matter_type=m.matter_type,
        agency=m.agency[:255],
        title=matter_title(m)[:255],  # 元数据's 题名, so the 目录文件 lists the same
        completed_at=m.completed_at,
        source_updated_at=m.updated_at,
        year=a.year,
        retention_period=str(a.retention_period) if a.retention_period else None,
        category_code=a.category_code,
        org_code=a.org_code,
        retention_version=a.table_version,
        retention_row=a.rule_row,
        disposition_date=a.disposition_date,
        run_id=run_id,
        record=m.model_dump(mode="json"),
        appraisal=a.model_dump(mode="json"),
    )
