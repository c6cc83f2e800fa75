"""`guidang.yaml`: the one file a user writes. Every self-built system is described here, not in code.

Values may say `${NAME}` or `${NAME:-default}` to take them from the environment, which is how
secrets (database passwords, S3 keys) stay out of the file. Relative paths are relative to the
config file's folder, so a world can be moved as a whole.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from schemas.findings import Finding, GuidangError


def _known_zone(name: str) -> str:
    """Refuse a zone the tz database does not know when the config loads, not when a command
    first formats a time with it (a traceback in `retention due` or `check`)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as Asia/Shanghai") from exc
    return name


ZoneName = Annotated[str, AfterValidator(_known_zone)]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Fonds(_Config):
    """全宗: the archival unit whose 档号 sequences a package joins."""

    code: str = Field(pattern=r"^[A-Za-z0-9]{1,16}$")  # 全宗号
    name: str
    # DA/T 13-2022 by default: 全宗号-门类代码·年度·保管期限·机构问题代码-件号
    archival_code_template: str = "{fonds}-{category}·{year}·{period}·{org}-{item:04d}"


class SourceBase(_Config):
    name: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    fonds: str | None = None  # 全宗号; the first fonds when absent
    overlap_minutes: int = Field(default=60, ge=0)  # re-read this much before the watermark
    initial_since: datetime = datetime.fromisoformat("2000-01-01T00:00:00+08:00")
    max_concurrency: int = Field(default=4, ge=1, le=64)  # chunks in flight against this source
    chunk_size: int = Field(default=50, ge=1)


class UnifiedSource(SourceBase):
    """The unified system's online-archiving interface (HTTP JSON)."""

    kind: Literal["unified"]
    base_url: str
    page_size: int = Field(default=100, ge=1, le=1000)
    timeout_seconds: float = Field(default=30, gt=0)
    retries: int = Field(default=3, ge=0)
    backoff_seconds: float = Field(default=0.5, ge=0)
    token_env: str | None = None  # name of the env var holding the bearer token


class DocumentContent(_Config):
    """Where a self-built system keeps a document's bytes."""

    kind: Literal["blob", "path", "url"]
    column: str  # the documents-query column holding the BLOB, the relative path or the URL
    root: str | None = None  # for kind=path: the folder relative paths live under


class SqlSource(SourceBase):
    """A self-built system (自建系统) reached with SQLAlchemy and described only by queries and a mapping.

    `matters_query` takes `:since` and `:until`; `documents_query` and `steps_query` take
    `:project_id`. `columns` maps canonical field names to result columns; `constants` fills fields
    the system does not hold (e.g. every row of an inspection system is 事项类型 06).
    """

    kind: Literal["sql"]
    url: str
    matters_query: str
    columns: dict[str, str]
    constants: dict[str, str] = Field(default_factory=dict)
    documents_query: str
    document_columns: dict[str, str]
    content: DocumentContent
    steps_query: str | None = None
    step_columns: dict[str, str] = Field(default_factory=dict)
    group_values: dict[str, str] = Field(default_factory=dict)  # source value -> 申报/过程/结果
    timezone: ZoneName = "Asia/Shanghai"  # for naive datetimes in the source
    ack_statement: str | None = None  # 归档回传: run after verification with :project_id, :archival_code


Source = Annotated[UnifiedSource | SqlSource, Field(discriminator="kind")]


class FsRepository(_Config):
    kind: Literal["fs"] = "fs"
    path: str = "archive"


class S3Repository(_Config):
    kind: Literal["s3"]
    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None  # any S3-compatible store; None = AWS
    region: str | None = None
    # Names of environment variables, never the secrets themselves; None = boto3's default chain.
    access_key_id_env: str | None = None
    secret_access_key_env: str | None = None
    multipart_threshold_mb: int = Field(default=64, ge=5)
    object_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] | None = None
    verify_sample_rate: float = Field(default=1.0, ge=0, le=1)  # share of objects fully re-hashed


Repository = Annotated[FsRepository | S3Repository, Field(discriminator="kind")]


class RetentionConfig(_Config):
    table: str | None = None  # a file used when the ledger holds no imported version


class Settings(_Config):
    """The whole of guidang.yaml."""

    fonds: list[Fonds] = Field(min_length=1)
    ledger_url: str = "sqlite:///ledger.sqlite"
    repository: Repository = Field(default_factory=FsRepository)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    staging: str = "staging"
    timezone: ZoneName = "Asia/Shanghai"
    sources: list[Source] = Field(min_length=1)
    check_warnings: list[str] = Field(default_factory=list)  # DA/T 70 item codes downgraded to warnings

    base_dir: Path = Field(default=Path("."), exclude=True)

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, v: list[SourceBase]) -> list[SourceBase]:
        names = [s.name for s in v]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"source names must be unique; repeated: {', '.join(sorted(dup))}")
        return v

    @property
    def zone(self) -> ZoneInfo:
        """The configured zone, in which every time a package, register or report shows is written."""
        return ZoneInfo(self.timezone)

    def fonds_for(self, source: SourceBase) -> Fonds:
        code = source.fonds or self.fonds[0].code
        for f in self.fonds:
            if f.code == code:
                return f
        raise GuidangError(f"source {source.name}: fonds {code!r} is not declared under fonds:")

    def source(self, name: str) -> UnifiedSource | SqlSource:
        for s in self.sources:
            if s.name == name:
                return s
        raise GuidangError(f"no source named {name!r} (configured: {', '.join(s.name for s in self.sources)})")

    def resolve(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self.base_dir / p

    def resolve_url(self, url: str) -> str:
        """`sqlite:///relative.db` is relative to the config folder; other URLs pass through."""
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
            return prefix + str(self.resolve(url[len(prefix):]))
        return url


_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand_env(value: object, where: str, missing: list[str]) -> object:
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            missing.append(f"{where}: environment variable {name} is not set")
            return ""
        return _ENV_RE.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand_env(v, f"{where}.{k}", missing) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, f"{where}[{i}]", missing) for i, v in enumerate(value)]
    return value


def load_settings(path: str | Path) -> Settings:
    """Read guidang.yaml; every problem is reported with its location in the file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise GuidangError(f"config file not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise GuidangError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise GuidangError(f"{path}: expected a mapping at the top level")
    missing: list[str] = []
    expanded = _expand_env(raw, "", missing)
    if missing:
        raise GuidangError(f"{path}: " + "; ".join(missing))
    try:
        settings = Settings.model_validate(expanded)
    except ValidationError as exc:
        findings = [
            Finding("CONFIG-INVALID", f"{path}:{'.'.join(str(p) for p in e['loc'])}", e["msg"])
            for e in exc.errors()
        ]
        raise GuidangError(f"{path}: invalid configuration\n" + "\n".join(map(str, findings)), findings) from exc
    settings.base_dir = path.resolve().parent
    return settings
