"""实施机构 units and their enablement for online archiving: the bureau's rollout, in `guidang.yaml`.

The bureau enables units one by one, first for licensing matters (事项类型 01) and then for every
category, against dates it sets. A matter of a unit or 事项类型 not yet enabled is neither archived
nor lost: the night records it as waiting (`ledger.waiting`), and the first night on which its unit
and type are enabled collects the waiting window again and archives it. Without a `units:` section
every matter is enabled, as before units existed.
"""

from __future__ import annotations

import unicodedata
from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.model import MATTER_TYPES


class WaitingReason(StrEnum):
    """Why a matter waits: what the bureau has to do before it is archived."""

    UNIT_UNKNOWN = "unit-unknown"  # its 实施机构 is not among the configured units
    UNIT_DISABLED = "unit-disabled"  # the unit is configured but not enabled
    NOT_YET = "unit-not-yet-enabled"  # enabled from a date later than the night
    TYPE_NOT_ENABLED = "type-not-enabled"  # the unit is enabled for other 事项类型 only

    @property
    def text(self) -> str:
        return {
            "unit-unknown": "实施机构未登记",
            "unit-disabled": "单位未启用在线归档",
            "unit-not-yet-enabled": "单位尚未到启用日期",
            "type-not-enabled": "该事项类型未启用",
        }[self.value]


def fold(name: str) -> str:
    """Names as sources write them differ in width and spacing (全角/半角); compare them folded."""
    return "".join(unicodedata.normalize("NFKC", name).split())


class Unit(BaseModel):
    """One 实施机构 (unit) as the bureau registers it for online archiving."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="实施机构 name as the sources write it in their matters (matched "
                      "ignoring width and spaces)")
    code: str | None = Field(default=None, description="实施机构代码 (统一社会信用代码 of the unit); a matter whose "
                             "agency_code equals it belongs to the unit whatever its name")
    aliases: list[str] = Field(default_factory=list, description="other names the sources use for the unit")
    fonds: str | None = Field(default=None, description="全宗号 its matters archive into; the source's fonds when "
                              "absent (must be declared under fonds:)")
    org_code: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{1,16}$", description="机构问题代码 in its "
                                 "档号 when the deciding retention rule names none")
    enabled: bool = Field(default=False, description="whether the unit is enabled for online archiving")
    enabled_from: date | None = Field(default=None, description="the first night (in the configured zone) on "
                                      "which it is enabled; enabled at once when absent")
    matter_types: list[str] = Field(default_factory=list, description="事项类型 codes enabled (e.g. ['01'] for "
                                    "licensing first); empty: all")
    target_date: date | None = Field(default=None, description="the date by which the bureau wants the unit "
                                     "archiving online (for `audit rollout`)")
    target_matter_types: list[str] = Field(default_factory=list, description="事项类型 the target is about; empty: "
                                           "all nine categories of power matters and public services")

    @field_validator("matter_types", "target_matter_types")
    @classmethod
    def _known_types(cls, v: list[str]) -> list[str]:
        unknown = [t for t in v if t not in MATTER_TYPES]
        if unknown:
            raise ValueError(f"unknown 事项类型 {', '.join(unknown)} (known: {', '.join(sorted(MATTER_TYPES))})")
        return v

    def enabled_on(self, day: date) -> bool:
        return self.enabled and (self.enabled_from is None or day >= self.enabled_from)

    def waiting_reason(self, matter_type: str, day: date) -> WaitingReason | None:
        """None when a matter of this type is archived on `day`; else why it waits."""
        if not self.enabled:
            return WaitingReason.UNIT_DISABLED
        if not self.enabled_on(day):
            return WaitingReason.NOT_YET
        if self.matter_types and matter_type not in self.matter_types:
            return WaitingReason.TYPE_NOT_ENABLED
        return None


class Units:
    """The configured units, looked up by a matter's 实施机构 name or code."""

    def __init__(self, units: list[Unit]) -> None:
        self.units = units
        self._by_name = {fold(n): u for u in units for n in (u.name, *u.aliases)}
        self._by_code = {u.code: u for u in units if u.code}

    @property
    def configured(self) -> bool:
        return bool(self.units)

    def find(self, agency: str, agency_code: str | None = None) -> Unit | None:
        if agency_code and agency_code in self._by_code:
            return self._by_code[agency_code]
        return self._by_name.get(fold(agency))

    def name_of(self, agency: str, agency_code: str | None = None) -> str:
        """The unit's registered name, or the agency as the source wrote it when no unit matches."""
        unit = self.find(agency, agency_code)
        return unit.name if unit else agency

    def waiting_reason(self, agency: str, agency_code: str | None, matter_type: str,
                       at: datetime | date) -> WaitingReason | None:
        """None when the matter is archived by the night of `at` (a date in the configured zone)."""
        if not self.units:
            return None
        unit = self.find(agency, agency_code)
        if unit is None:
            return WaitingReason.UNIT_UNKNOWN
        day = at.date() if isinstance(at, datetime) else at
        return unit.waiting_reason(matter_type, day)
