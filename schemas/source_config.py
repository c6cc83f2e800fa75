"""The sources of `guidang.yaml`: the unified system (统建系统) and self-built systems (自建系统) by
configuration, each with its own name, fonds, window and read limits."""

from __future__ import annotations

import codecs
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema, field_validator

from schemas.config_base import ConfigModel, ZoneName
from schemas.model import DocumentGroup


def _group(value: object) -> object:
    return DocumentGroup.parse(value) if isinstance(value, str) else value


# 材料类别 as the configuration may spell it: 申报 / 申报材料 / application
GroupName = Annotated[
    DocumentGroup,
    BeforeValidator(_group),
    WithJsonSchema({"type": "string", "description": "申报 / 过程 / 结果 (or 申报材料, application, ...)"}),
]


class SourceBase(ConfigModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$",
                      description="the source's name in the ledger, the summary and `--source`; unique")
    fonds: str | None = Field(default=None, description="全宗号 of the fonds this source archives into; "
                              "the first fonds when absent")
    overlap_minutes: int = Field(default=60, ge=0, description="each night re-reads this much before the "
                                 "watermark (late commits)")
    initial_since: datetime = Field(
        default=datetime.fromisoformat("2000-01-01T00:00:00+08:00"),
        description="where the first night's window starts when the ledger has no watermark yet",
    )
    max_concurrency: int = Field(default=4, ge=1, le=64, description="chunks in flight against this source at once")
    chunk_size: int = Field(default=50, ge=1, description="matters per chunk (one task of the night)")
    read_timeout_seconds: float = Field(default=300, gt=0, description="longest wait for one read of a document "
                                        "(a file block, a BLOB slice, an HTTP body): the document fails, not the night")


class UnifiedSource(SourceBase):
    """The unified system's online-archiving interface (HTTP JSON)."""

    kind: Literal["unified"] = Field(description="unified: the 政务服务网统建系统 online-archiving interface")
    base_url: str = Field(description="the interface's base URL (…/archive); the API paths are appended")
    page_size: int = Field(default=100, ge=1, le=1000, description="records per page when listing a window")
    timeout_seconds: float = Field(default=30, gt=0, description="per HTTP request")
    retries: int = Field(default=3, ge=0, description="retries of a failed request (5xx, timeouts, cut transfers)")
    backoff_seconds: float = Field(default=0.5, ge=0, description="first wait between retries; doubles each time")
    call_deadline_seconds: float = Field(default=120, gt=0, description="one HTTP call's whole time for its "
                                         "connection, its headers and its first MiB; a peer that trickles fails "
                                         "the call (and the retries decide), however often it sends a byte")
    deadline_seconds_per_mb: float = Field(default=60, gt=0, description="the call's deadline grows by this "
                                           "much for every MiB of body received")
    token_env: str | None = Field(default=None, description="name of the environment variable holding the bearer "
                                  "token (never the token itself); no Authorization header when absent")


class DocumentContent(ConfigModel):
    """Where a self-built system keeps a document's bytes."""

    kind: Literal["blob", "path", "url"] = Field(
        description="blob: a BLOB column of documents_query; path: a file path relative to root; url: an HTTP URL")
    column: str = Field(description="the documents_query column holding the BLOB, the relative path or the URL")
    root: str | None = Field(default=None, description="kind path: the folder every relative path must stay in "
                             "(required for path)")


class SqlSource(SourceBase):
    """A self-built system (自建系统) reached with SQLAlchemy and described only by queries and a mapping.

    `matters_query` takes `:since` and `:until`; `documents_query` and `steps_query` take
    `:project_id`. `columns` maps canonical field names to result columns; `constants` fills fields
    the system does not hold (e.g. every row of an inspection system is 事项类型 06).
    `count_query` and `list_query` take `:start` and `:end` (办结时间 in [start, end), the
    source's local time) and let `audit reconcile` hold the archive against the system's own count.
    """

    kind: Literal["sql"] = Field(description="sql: a self-built system (自建系统) read with SQLAlchemy")
    url: str = Field(description="SQLAlchemy database URL; put the password in ${ENV}; sqlite:/// paths are "
                     "relative to guidang.yaml")
    matters_query: str = Field(description="the completed matters updated in (:since, :until]; "
                               "both parameters required")
    columns: dict[str, str] = Field(description="canonical matter field -> matters_query result column "
                                    "(keys: see \"Keys of columns\")")
    constants: dict[str, str] = Field(default_factory=dict, description="canonical matter field -> a fixed value, "
                                      "for fields the system does not hold (e.g. matter_type: '06')")
    documents_query: str = Field(description="one matter's documents; takes :project_id")
    document_columns: dict[str, str] = Field(description="canonical document field -> documents_query column "
                                             "(keys: see \"Keys of document_columns\")")
    content: DocumentContent = Field(description="where the documents' bytes are")
    steps_query: str | None = Field(default=None, description="one matter's 办理环节; takes :project_id")
    step_columns: dict[str, str] = Field(default_factory=dict, description="canonical step field -> steps_query "
                                         "column (keys: see \"Keys of step_columns\")")
    group_values: dict[str, GroupName] = Field(default_factory=dict,
                                         description="source value of the group column -> 申报 / 过程 / 结果")
    timezone: ZoneName = Field(default="Asia/Shanghai",
                               description="IANA zone of the naive date-times the database holds")
    ack_statement: str | None = Field(default=None, description="归档回传: run after verification with :project_id "
                                      "and :archival_code; should be idempotent")
    count_query: str | None = Field(default=None, description="应归尽归: how many matters the system completed "
                                    "(办结时间) in [:start, :end), one row per 实施机构 and 事项类型; both parameters "
                                    "required; without it `audit reconcile` cannot check this source")
    count_columns: dict[str, str] = Field(default_factory=dict, description="count_query field -> result column: "
                                          "agency, matter_type, count (agency / matter_type may be constants "
                                          "instead); required with count_query")
    list_query: str | None = Field(default=None, description="the same matters one row each, so that a "
                                   "difference names its 办件; takes :start and :end")
    list_columns: dict[str, str] = Field(default_factory=dict, description="list_query field -> result column: "
                                         "project_id, completed_at (both required), agency, matter_type, "
                                         "service_code, updated_at (a field the system does not hold may be a "
                                         "constant)")
    encoding: str = Field(default="utf-8", description="how the database's text is encoded; every value is "
                          "decoded row by row, so one undecodable value quarantines its row, not the source")
    fallback_encoding: str | None = Field(default=None, description="tried when `encoding` fails, e.g. gb18030 for "
                                          "rows an old client wrote in GBK")
    statement_timeout_seconds: float = Field(default=300, gt=0, description="longest run of one SQL statement "
                                             "(a window, a matter's documents, a BLOB slice): the database stops "
                                             "it, the call fails naming the query, and the retries decide")
    call_deadline_seconds: float = Field(default=120, gt=0, description="content.kind url: one document GET's "
                                         "whole time for its connection, its headers and its first MiB; a peer that "
                                         "trickles fails the call (and the retries decide), however often it sends "
                                         "a byte")
    deadline_seconds_per_mb: float = Field(default=60, gt=0, description="content.kind url: the call's deadline "
                                           "grows by this much for every MiB of body received")
    earliest_year: int = Field(default=1949, ge=1, le=9999, description="a date before this year is implausible: "
                               "the row is quarantined naming the column")

    @field_validator("encoding", "fallback_encoding")
    @classmethod
    def _known_encoding(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                codecs.lookup(v)
            except LookupError as exc:
                raise ValueError(f"unknown encoding {v!r}: use a Python codec name such as utf-8 or gb18030") from exc
        return v


Source = Annotated[UnifiedSource | SqlSource, Field(discriminator="kind")]


