"""The format policy (格式策略): what the archive does with each format family it receives.

Applicants upload Word and Excel files and departments attach them; GB/T 18894 and the archives'
practice want text documents kept in a fixed-layout (版式) format, and the receiving systems check
against a format list. Archivematica's answer, followed here, is to keep the original and add a
preservation copy: `normalise` keeps the original byte for byte and adds a PDF/A-2b rendition
(格式转换) made with LibreOffice; `keep` archives the file as it is; `refuse` quarantines the matter
naming the policy row, so an archivist knows which line of guidang.yaml to change.

Format names are the short names 元数据 records in 格式 (PDF, DOCX, WPS, …; packager/formats.py);
UNKNOWN is a file no signature identified, EMPTY a file of no bytes.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Action = Literal["keep", "normalise", "refuse"]


class FormatRule(BaseModel):
    """One row of the policy: a family of formats and what is done with them."""

    model_config = ConfigDict(extra="forbid")

    family: str = Field(description="the row's name, shown in quarantine reasons (e.g. word processing)")
    formats: list[str] = Field(min_length=1, description="short format names as 元数据 records them in 格式 "
                               "(PDF, OFD, DOCX, XLS, WPS, …; UNKNOWN: unidentified; EMPTY: no bytes)")
    action: Action = Field(description="keep: archive as it is; normalise: keep it and add a PDF/A-2b rendition "
                           "made with LibreOffice; refuse: quarantine the matter (Q-FORMAT-REFUSED)")

    @field_validator("formats")
    @classmethod
    def _upper(cls, v: list[str]) -> list[str]:
        return [f.strip().upper() for f in v]


DEFAULT_RULES: tuple[FormatRule, ...] = (
    FormatRule(family="fixed layout (版式)", formats=["PDF", "OFD"], action="keep"),
    FormatRule(family="images", formats=["JPEG", "TIFF", "PNG", "JP2"], action="keep"),
    FormatRule(family="structured and plain text", formats=["XML", "TXT"], action="keep"),
    FormatRule(family="audio and video", formats=["WAV", "MP3", "MP4"], action="keep"),
    FormatRule(family="word processing (文字处理)", formats=["DOC", "DOCX", "WPS", "RTF", "ODT"], action="normalise"),
    FormatRule(family="spreadsheets (电子表格)", formats=["XLS", "XLSX", "ET", "ODS"], action="normalise"),
    FormatRule(family="presentations (演示文稿)", formats=["PPT", "PPTX", "DPS", "ODP"], action="normalise"),
    FormatRule(family="web pages", formats=["HTML"], action="normalise"),
    FormatRule(family="executables", formats=["EXE", "ELF"], action="refuse"),
    FormatRule(family="unidentified", formats=["UNKNOWN", "EMPTY"], action="refuse"),
)


class ConverterConfig(BaseModel):
    """LibreOffice headless (格式转换), started once per document with a profile of its own."""

    model_config = ConfigDict(extra="forbid")

    program: str = Field(default="soffice", description="the LibreOffice program (a name looked up on PATH, or a "
                         "path); absent: matters needing a rendition are quarantined Q-CONVERTER-MISSING")
    timeout_seconds: float = Field(default=180, gt=0, description="per conversion; a conversion still running "
                                   "is killed with its whole process group (Q-CONVERSION-FAILED)")
    max_parallel: int = Field(default=2, ge=1, le=32, description="conversions at once on one machine, across "
                              "its worker processes (each holds a LibreOffice profile of its own)")
    profiles: str = Field(default="converter", description="folder of the per-slot LibreOffice user profiles "
                          "(kept warm between documents) and the slots' locks, shared by the machine's workers; "
                          "relative to the configuration file; not inside `staging`, whose stale folders a "
                          "night removes")


class FormatsConfig(BaseModel):
    """What is done with each format family (keep / normalise / refuse) and the converter that
    makes renditions."""

    model_config = ConfigDict(extra="forbid")

    policy: list[FormatRule] = Field(default_factory=lambda: list(DEFAULT_RULES), description="rows of the "
                                     "format policy; the first row listing a format decides")
    unlisted: Action = Field(default="refuse", description="what is done with a format no row lists "
                             "(ZIP, GIF, EPUB, …)")
    converter: ConverterConfig = Field(default_factory=ConverterConfig, description="LibreOffice for renditions")

    @model_validator(mode="after")
    def _no_normalising_pdf(self) -> FormatsConfig:
        for rule in self.policy:
            if rule.action == "normalise" and {"PDF", "OFD"} & set(rule.formats):
                raise ValueError(f"format policy row {rule.family!r}: PDF and OFD are kept, never normalised")
        return self

    def decide(self, format_name: str) -> tuple[Action, str]:
        """The action for a format and the row that decided it, as a quarantine reason names it
        (`formats.policy[4] "word processing"`, or `formats.unlisted`)."""
        for i, rule in enumerate(self.policy):
            if format_name in rule.formats:
                return rule.action, f'formats.policy[{i}] "{rule.family}"'
        return self.unlisted, "formats.unlisted"
