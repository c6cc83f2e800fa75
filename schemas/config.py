"""`guidang.yaml`: the one file a user writes. Every self-built system is described here, not in code.

Values may say `${NAME}` or `${NAME:-default}` to take them from the environment, which is how
secrets (database passwords, S3 keys) stay out of the file. Relative paths are relative to the
config file's folder, so a world can be moved as a whole.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from schemas.config_base import ConfigModel, ZoneName
from schemas.findings import Finding, GuidangError
from schemas.format_policy import FormatsConfig
from schemas.ofd_config import OfdConfig

# the sources' sections, re-exported: every layer names them through schemas.config
from schemas.source_config import DocumentContent, Source, SourceBase, SqlSource, UnifiedSource  # noqa: F401
from schemas.units import Unit, Units, fold
from schemas.web_config import WebConfig


class Fonds(ConfigModel):
    """全宗: the archival unit whose 档号 sequences a package joins."""

    code: str = Field(pattern=r"^[A-Za-z0-9]{1,16}$", description="全宗号, 1 to 16 letters or digits")
    name: str = Field(description="全宗名称: the unit's name, written as 移交单位 in the DA/T 93 登记表")
    archival_code_template: str = Field(
        default="{fonds}-{category}·{year}·{period}·{org}-{item:04d}",
        description="how a 档号 is composed (DA/T 13-2022 by default: 全宗号-门类代码·年度·保管期限·机构问题代码-件号);"
        " placeholders {fonds} {category} {year} {period} {org} {item}",
    )


class FsRepository(ConfigModel):
    kind: Literal["fs"] = Field(default="fs", description="fs: a folder (a mounted volume in production)")
    path: str = Field(default="archive", description="the archive folder; must exist (an unmounted volume is refused)")


class S3Repository(ConfigModel):
    kind: Literal["s3"] = Field(description="s3: any S3-compatible object store")
    bucket: str = Field(description="the bucket; it must exist")
    prefix: str = Field(default="", description="key prefix of every object")
    endpoint_url: str | None = Field(default=None, description="the store's endpoint; AWS when absent")
    region: str | None = Field(default=None, description="the bucket's region")
    access_key_id_env: str | None = Field(default=None, description="name of the environment variable holding the "
                                          "access key id; boto3's default chain when absent")
    secret_access_key_env: str | None = Field(default=None, description="name of the environment variable holding "
                                              "the secret key; boto3's default chain when absent")
    multipart_threshold_mb: int = Field(default=64, ge=5, description="files from this size are uploaded in parts")
    object_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] | None = Field(
        default=None, description="retain every object until its disposition date, 永久 under a legal hold; the "
        "bucket must have Object Lock (an error otherwise)")
    verify_sample_rate: float = Field(default=1.0, ge=0, le=1, description="share of objects fully re-read and "
                                      "hashed after upload")
    connect_timeout_seconds: float = Field(default=10, gt=0, description="to connect to the store, per attempt")
    read_timeout_seconds: float = Field(default=60, gt=0, description="a silent store fails an attempt after "
                                        "this long; a call gives up after max_attempts of them")
    max_attempts: int = Field(default=5, ge=1, description="attempts of one store call (the first and its "
                              "retries): with the timeouts, what bounds a call to a store that stopped answering")
    deadline_seconds_per_mb: float = Field(default=60, gt=0, description="a GET's body (read-back, fixity, "
                                           "access copies) is read within connect_timeout_seconds plus this much "
                                           "for each MiB (at least one): a store that trickles fails the read")


Repository = Annotated[FsRepository | S3Repository, Field(discriminator="kind")]


class Replica(ConfigModel):
    """A second (third...) copy of the archive: every object the night stores goes to it too."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$", description="how `audit fixity --copy NAME` names it")
    repository: Repository = Field(description="where the copy is (kind fs or s3), as `repository`")


class RetentionConfig(ConfigModel):
    table: str | None = Field(default=None, description="归档范围和保管期限表 (XLSX/CSV/YAML) imported as the first "
                              "version when the ledger holds none")


class Orchestration(ConfigModel):
    """Where the night's work units (chunks of matters) run; see README "Scale-out"."""

    workers: int = Field(default=0, ge=0, le=64, description="worker processes for `--orchestrator local`: 0 = one "
                         "per CPU core and one more, 1 = threads inside the run's own process")
    task_runner: Literal["threads", "dask"] = Field(default="threads", description="how the Prefect flow runs a "
                                                    "source's chunks: threads in the flow's process, or Dask")
    dask_address: str | None = Field(default=None, description="scheduler of a running Dask cluster "
                                     "(tcp://host:8786); unset with task_runner dask: one local cluster "
                                     "per night, shared by all its sources")
    dask_workers: int = Field(default=2, ge=1, le=64, description="worker processes of that local Dask cluster")
    max_chunks: int | None = Field(default=100, ge=1, description="Prefect nights: at most this many chunks (task "
                                   "runs on the server) per stage of a source; a larger window gets chunks larger "
                                   "than its chunk_size, so the server's cost per night stays bounded; null: "
                                   "chunk_size alone")


class Alerts(ConfigModel):
    """What `guidang deploy` sets up on the Prefect server to tell operations about a night."""

    notification_block: str | None = Field(
        default=None, pattern=r"^[a-z0-9-]+/[A-Za-z0-9_\-]+$",
        description="the Prefect notification block the automations send to, as block-type-slug/name "
        "(e.g. custom-webhook/guidang-alerts; create it first); unset: `guidang deploy` creates no automations")
    quarantined_more_than: int = Field(default=20, ge=0, description="notify when one night quarantines more "
                                       "matters than this")
    no_completed_night_hours: int = Field(default=26, ge=1, description="notify when no night has completed "
                                          "for this many hours")


class VirusScanConfig(ConfigModel):
    """ClamAV (病毒检测, GD-4-1): clamd's socket, or the clamscan program. Configured, it scans every
    document at staging and GD-4-1 becomes a required item; a scanner that cannot answer fails it."""

    clamd_socket: str | None = Field(default=None, description="clamd's unix socket path (e.g. "
                                     "/run/clamav/clamd.ctl) or tcp://host:port; preferred: the database loads once")
    clamscan: str | None = Field(default=None, description="the clamscan program (e.g. /usr/bin/clamscan), used "
                                 "when clamd_socket is not set; loads the database for every document")
    database: str | None = Field(default=None, description="clamscan only: signature database folder or file "
                                 "(--database); ClamAV's default when absent")
    timeout_seconds: float = Field(default=600, gt=0, description="per document scanned")

    @model_validator(mode="after")
    def _one_scanner(self) -> VirusScanConfig:
        if bool(self.clamd_socket) == bool(self.clamscan):
            raise ValueError("give exactly one of clamd_socket and clamscan")
        return self


class SignatureRule(ConfigModel):
    """Which documents must carry an electronic signature or seal (电子签名/电子印章)."""

    service_codes: list[str] = Field(default_factory=lambda: ["*"], description="事项编码 patterns (* and ? "
                                     "wildcards); the rule applies to matters whose 事项编码 matches one")
    matter_types: list[str] = Field(default_factory=list, description="事项类型 codes (e.g. '01' 行政许可); "
                                    "empty: any type")
    groups: list[Literal["申报", "过程", "结果"]] = Field(default_factory=lambda: ["结果"],
                                                      description="材料类别 whose documents must be signed")
    each: bool = Field(default=True, description="true: every document of those groups must be signed; false: "
                       "at least one of them")


class SignatureConfig(ConfigModel):
    required: list[SignatureRule] = Field(default_factory=list, description="rules saying which documents must "
                                          "be signed (GD-1-6); none: signatures are checked where present")
    trust_roots: list[str] = Field(default_factory=list, description="PEM/DER certificates (e.g. the 电子印章 "
                                   "authorities a bureau trusts) a PDF signer, an OFD seal's signer and maker "
                                   "must chain to for 证书可信; without them trust is not judged (nothing is fetched)")
    signer_certificates: list[str] = Field(default_factory=list, description="PEM/DER certificates that OFD "
                                           "signatures carrying none (a bare SM2 value, a CMS without "
                                           "certificates) are verified with; without one they are 存在未验证")
    accept_unverified: bool = Field(default=True, description="whether a signature recorded 存在未验证 (one "
                                    "that could not be judged, e.g. no certificate) satisfies a rule in `required`")


class Settings(ConfigModel):
    """The whole of guidang.yaml."""

    fonds: list[Fonds] = Field(min_length=1, description="全宗; the first is the default for sources that name none")
    ledger_url: str = Field(default="sqlite:///ledger.sqlite", description="SQLAlchemy URL of the transfer ledger; "
                            "PostgreSQL when several workers run")
    repository: Repository = Field(default_factory=FsRepository, description="where packages are stored "
                                   "(kind fs or s3)")
    replicas: list[Replica] = Field(default_factory=list, description="further copies of the archive, each "
                                    "written and verified by the night, caught up when a night missed it, "
                                    "checked and used for repair by `audit fixity --copy NAME`; names unique")
    retention: RetentionConfig = Field(default_factory=RetentionConfig, description="the retention table")
    staging: str = Field(default="staging", description="work folder for packages being built and checked")
    timezone: ZoneName = Field(default="Asia/Shanghai", description="IANA zone every time in packages, registers "
                               "and reports is written in (归档时间, 检测时间, 移交时间)")
    sources: list[Source] = Field(min_length=1, description="the systems matters are collected from "
                                  "(kind unified or sql); names unique")
    check_warnings: list[str] = Field(default_factory=list, description="DA/T 70 item codes (e.g. GD-3-2) whose "
                                      "failure is reported as a warning instead of quarantining")
    pdf_parse_limit_mb: int = Field(default=64, ge=1, description="a PDF larger than this (MiB) is not parsed "
                                    "but quarantined as Q-PDF-TOO-LARGE: parsing holds a few times the file in memory")
    transfer_batch_max: int = Field(default=2000, ge=1, description="most matters in one DA/T 93 transfer batch "
                                    "(移交批次); a larger night is handed over in several, in 档号 order")
    orchestration: Orchestration = Field(default_factory=Orchestration, description="where the work units run "
                                         "(local worker processes, Prefect threads or a Dask cluster)")
    alerts: Alerts = Field(default_factory=Alerts, description="Prefect automations created by `guidang deploy`")
    units: list[Unit] = Field(default_factory=list, description="实施机构 enabled for online archiving one by one "
                              "(the bureau's rollout); empty: every matter is archived")
    night_deadline_minutes: float | None = Field(default=None, gt=0, description="a night still at work after "
                                                 "this long stops at its next step and ends failed with its "
                                                 "summary (what it left is the next night's); no limit when absent")

    virus_scan: VirusScanConfig | None = Field(default=None, description="ClamAV for GD-4-1; without it GD-4-1 "
                                               "is 未检测 (not performed) and not required")
    signatures: SignatureConfig = Field(default_factory=SignatureConfig, description="electronic signatures: "
                                        "which are required, which roots are trusted")
    ofd: OfdConfig = Field(default_factory=OfdConfig, description="OFD documents: standard fonts and the "
                           "limits on one document")
    required_checks: list[str] | None = Field(default=None, description="DA/T 70 item codes that must be performed "
                                              "and pass for the verdict 通过; default: every item, GD-4-1 only "
                                              "when virus_scan is configured")
    web: WebConfig | None = Field(default=None, description="the bureau's console (`guidang web`): users, roles, "
                                  "sessions; the console refuses to start without it")
    formats: FormatsConfig = Field(default_factory=FormatsConfig, description="format policy (keep / normalise / "
                                   "refuse per family) and the LibreOffice converter for PDF/A renditions")

    base_dir: SkipJsonSchema[Path] = Field(default=Path("."), exclude=True)  # set by load_settings, not a key
    config_file: SkipJsonSchema[Path | None] = Field(default=None, exclude=True)  # the file it was read from
    _units: Units | None = PrivateAttr(default=None)

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, v: list[SourceBase]) -> list[SourceBase]:
        names = [s.name for s in v]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"source names must be unique; repeated: {', '.join(sorted(dup))}")
        return v

    @field_validator("replicas")
    @classmethod
    def _unique_replicas(cls, v: list[Replica]) -> list[Replica]:
        names = [r.name for r in v]
        dup = {n for n in names if names.count(n) > 1 or n == "primary"}
        if dup:
            raise ValueError(f"replica names must be unique and not 'primary'; repeated: {', '.join(sorted(dup))}")
        return v

    @model_validator(mode="after")
    def _units_known(self) -> Settings:
        names = [fold(n) for u in self.units for n in (u.name, *u.aliases)]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"units: a name or alias is given to more than one unit: {', '.join(dup)}")
        declared = {f.code for f in self.fonds}
        for u in self.units:
            if u.fonds is not None and u.fonds not in declared:
                raise ValueError(f"units: {u.name}: fonds {u.fonds!r} is not declared under fonds:")
        return self

    @property
    def unit_index(self) -> Units:
        """The units looked up by a matter's 实施机构 (built once per Settings)."""
        if self._units is None:
            self._units = Units(self.units)
        return self._units

    @property
    def zone(self) -> ZoneInfo:
        """The configured zone, in which every time a package, register or report shows is written."""
        return ZoneInfo(self.timezone)

    def fonds_for(self, source: SourceBase, agency: str | None = None, agency_code: str | None = None) -> Fonds:
        """The unit's fonds when the matter's 实施机构 has one, else the source's, else the first."""
        unit = self.unit_index.find(agency, agency_code) if agency else None
        code = (unit.fonds if unit else None) or source.fonds or self.fonds[0].code
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
    settings.config_file = path.resolve()
    return settings
