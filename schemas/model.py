"""The canonical model every stage speaks: a completed matter (办件) as the connectors deliver it.

Connectors translate each source's own shape into these classes and nothing else crosses a stage
boundary, so retention, packager and ledger never learn a source's column names. The model keeps
what every source can deliver of a matter (docs/architecture.md, "The path of one matter");
`Document.locator` is opaque outside the connector that made
it, which is what lets a document's bytes stay at the source until the packager streams them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from schemas.digest import json_digest
from schemas.masking import MaskingFilter, mask_id, mask_text  # noqa: F401  (re-exported beside the model)


class DocumentGroup(StrEnum):
    """材料类别: the three groups a matter's documents are filed under in the package."""

    APPLICATION = "申报材料"
    PROCESS = "过程材料"
    RESULT = "结果材料"

    @property
    def short(self) -> str:
        """The table's spelling (申报/过程/结果), used by retention rules."""
        return self.value[:2]

    @classmethod
    def parse(cls, text: str) -> DocumentGroup:
        """Accept 申报 / 申报材料 / application (any case) so sources need no mapping code."""
        t = text.strip()
        for g in cls:
            if t in (g.value, g.short) or t.lower() == g.name.lower():
                return g
        raise ValueError(f"unknown document group {text!r} (expected 申报材料, 过程材料 or 结果材料)")


# 事项类型 codes of the provincial 办件 exchange tables.
MATTER_TYPES: dict[str, str] = {
    "01": "行政许可",
    "02": "行政处罚",
    "03": "行政强制",
    "04": "行政征收",
    "05": "行政给付",
    "06": "行政检查",
    "07": "行政确认",
    "08": "行政奖励",
    "09": "行政裁决",
    "10": "其他行政权力",
    "11": "公共服务",
    "12": "审核转报",
    "20": "公共服务",
}


def _error(kind: str, message: str) -> PydanticCustomError:
    """A validation error whose type names the fault, so connectors code it without reading the text."""
    return PydanticCustomError(kind, "{message}", {"message": message})


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, str_strip_whitespace=True)


class Applicant(StrictModel):
    """申请人. `card_number` is personal data: kept in the package, masked everywhere else."""

    name: str
    card_type: str | None = None
    card_number: str | None = None

    @property
    def masked_card_number(self) -> str | None:
        return mask_id(self.card_number)


class ProcessStep(StrictModel):
    """One step of 办理过程: 申请/受理/审查/决定/送达 (name), who did it, and when."""

    name: str
    actor: str | None = None
    department: str | None = None
    opinion: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ProcessStep:
        if self.started_at and self.ended_at and self.ended_at < self.started_at:
            raise _error(
                DATES_OUT_OF_ORDER, f"step {self.name}: ended_at {self.ended_at} is before started_at {self.started_at}"
            )
        return self


class Document(StrictModel):
    """One electronic file of a matter. `locator` is how its source finds the bytes again."""

    group: DocumentGroup
    title: str
    file_name: str
    media_type: str = "application/pdf"
    size: int | None = Field(default=None, ge=0)
    source_sha256: str | None = None
    source_sm3: str | None = None
    locator: str

    @field_validator("group", mode="before")
    @classmethod
    def _group(cls, v: object) -> object:
        return DocumentGroup.parse(v) if isinstance(v, str) else v

    @field_validator("source_sha256", "source_sm3")
    @classmethod
    def _hex(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        v = v.lower()
        if not re.fullmatch(r"[0-9a-f]{64}", v):
            raise ValueError("must be 64 hexadecimal characters")
        return v


class Matter(StrictModel):
    """A completed matter (办件) with everything the archive keeps about it.

    `source` + `project_id` (办件编号, PROJID) identify it; `updated_at` drives the per-source
    watermark; `completed_at` (办结时间) decides the year, the retention-table version in force and
    the disposition date.
    """

    source: str
    project_id: str = Field(min_length=1)
    service_code: str = Field(min_length=1)  # 事项编码 (SERVICECODE)
    service_version: str | None = None
    service_name: str = Field(min_length=1)  # 事项名称
    matter_type: str  # 事项类型 code, one of MATTER_TYPES
    handling_type: str | None = None  # 办件类型: 即办件 / 承诺件
    agency: str = Field(min_length=1)  # 实施机构
    agency_code: str | None = None
    region_code: str | None = None  # 区划代码
    applicant: Applicant
    steps: list[ProcessStep] = Field(default_factory=list)
    result: str | None = None  # 办理结果
    decided_at: datetime | None = None
    result_document_number: str | None = None  # 结果文书文号
    license_name: str | None = None  # 证照名称
    license_number: str | None = None  # 证照编号
    received_at: datetime | None = None  # 受理/申报时间
    completed_at: datetime  # 办结时间
    updated_at: datetime
    documents: list[Document] = Field(default_factory=list)

    @field_validator("matter_type")
    @classmethod
    def _known_type(cls, v: str) -> str:
        v = v.strip().zfill(2) if v.strip().isdigit() else v.strip()
        if v not in MATTER_TYPES:
            raise _error(UNKNOWN_MATTER_TYPE, f"unknown 事项类型 {v!r} (known: {', '.join(sorted(MATTER_TYPES))})")
        return v

    @model_validator(mode="after")
    def _dates_in_order(self) -> Matter:
        if self.received_at and self.completed_at < self.received_at:
            raise _error(
                DATES_OUT_OF_ORDER, f"completed_at {self.completed_at} is before received_at {self.received_at}"
            )
        if self.decided_at and self.received_at and self.decided_at < self.received_at:
            raise _error(
                DATES_OUT_OF_ORDER, f"decided_at {self.decided_at} is before received_at {self.received_at}"
            )
        return self

    @property
    def matter_type_name(self) -> str:
        return MATTER_TYPES[self.matter_type]

    @property
    def key(self) -> str:
        """`source/project_id`: how logs, quarantine and findings name a matter."""
        return f"{self.source}/{self.project_id}"

    def content_hash(self) -> str:
        """SHA-256 of the canonical JSON: equal for the same matter re-collected, different once
        the source changed it (补充材料), which is what decides "already archived" vs "new version"."""
        return json_digest(self.model_dump(mode="json", exclude={"updated_at"}))


# Pydantic error types raised by this model's own checks -> the quarantine code they mean
# (schemas/codes/quarantine.yaml). Everything else wrong with a record is Q-SOURCE-INVALID.
UNKNOWN_MATTER_TYPE = "unknown_matter_type"
DATES_OUT_OF_ORDER = "dates_out_of_order"
PROBLEM_CODES: dict[str, str] = {
    UNKNOWN_MATTER_TYPE: "Q-UNKNOWN-MATTER-TYPE",
    DATES_OUT_OF_ORDER: "Q-DATES-OUT-OF-ORDER",
}


class Problem(StrictModel):
    """One coded reason why a source record is not a Matter: the connector says what and where
    (in the source's own field names), the code says which kind of fault it is."""

    code: str = "Q-SOURCE-INVALID"
    message: str

    @classmethod
    def from_error(cls, error: Mapping[str, Any], message: str) -> Problem:
        """A pydantic error of this model, coded by its type (never by its wording)."""
        return cls(code=PROBLEM_CODES.get(str(error.get("type")), "Q-SOURCE-INVALID"), message=message)

    def within(self, prefix: str) -> Problem:
        return Problem(code=self.code, message=f"{prefix}: {self.message}")


class InvalidMatter(StrictModel):
    """A source record that could not become a Matter; it goes to quarantine with its findings."""

    source: str
    project_id: str
    updated_at: datetime | None = None
    raw: dict
    findings: list[Problem]

    @property
    def key(self) -> str:
        return f"{self.source}/{self.project_id}"

    @property
    def problems(self) -> list[str]:
        """The messages alone, for people."""
        return [p.message for p in self.findings]


class RetentionPeriod(StrEnum):
    """保管期限 as 档号 writes it: 永久 = Y, 30年 = D30, 10年 = D10."""

    PERMANENT = "Y"
    D30 = "D30"
    D10 = "D10"

    @property
    def years(self) -> int | None:
        return None if self is RetentionPeriod.PERMANENT else int(self.value[1:])

    @property
    def label(self) -> str:
        return "永久" if self is RetentionPeriod.PERMANENT else f"{self.years}年"


class Appraisal(StrictModel):
    """What the retention table decided for one matter (鉴定): whether it is kept, how long, under
    which 档号 parts, and which table version and row decided it (recorded in the package)."""

    in_scope: bool  # 归档范围: 归档 (True) / 不归档 (False)
    retention_period: RetentionPeriod | None = None  # 保管期限; None when not in scope
    category_code: str = "WS"  # 门类代码
    org_code: str = ""  # 机构问题代码
    year: int  # 年度: the year of completion
    disposition_date: str | None = None  # 到期鉴定 date (ISO), None for 永久 or not in scope
    excluded_groups: list[DocumentGroup] = Field(default_factory=list)  # 材料类别 rows saying 不归档
    table_version: str  # the retention-table version (content hash or ledger version id)
    rule_row: int  # the row of that table that decided (1-based, as the archivist sees it)
    rule_basis: str | None = None  # 依据
