"""`guidang deploy` and `guidang serve`: guidang's flows registered on a Prefect server.

A deployment is only useful if a worker started with nothing but `prefect worker start --pool
guidang` can run it: so everything a run needs is baked into the deployment when it is made, as
absolute paths taken on the machine that deploys: the project folder (the flow runs there and
imports guidang from there: job variables `working_dir` and PYTHONPATH), the configuration file
(the `config` parameter, and GUIDANG_CONFIG for anything the flow starts), and
PREFECT_LOGGING_EXTRA_LOGGERS so that guidang's log records reach the server as the run's logs.
The work pool is created when missing (type process); re-deploying updates the deployments and
replaces the automations, so `guidang deploy` can be run again after any change to guidang.yaml.

`guidang serve` runs the same flows from one long-lived process instead of a worker (a single-host
install); its deployments are named `served-…`, so serving never rewrites a deployed one.
"""

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from schemas.config import Settings
from schemas.errors import InvariantBroken
from schemas.findings import GuidangError

PROJECT = Path(__file__).resolve().parent.parent  # the folder holding flows/, schemas/, … (the flow source)
DEFAULT_POOL = "guidang"
SERVED_PREFIX = "served-"
AUTOMATION_PREFIX = "guidang: "
NIGHT_FLOWS = ("nightly_transfer", "backfill_transfer")


@dataclass(frozen=True)
class Spec:
    """One deployment: which flow (module path), its name, schedule and concurrency."""

    name: str
    module: str
    flow: str
    description: str
    cron: str | None = None
    concurrency: int | None = 1
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def entrypoint(self) -> str:
        return f"{self.module}.{self.flow}"


SPECS = (
    Spec("nightly", "flows.nightly", "nightly_transfer",
         "Archive every matter completed since each source's watermark (归档, every night at 02:00).",
         cron="0 2 * * *"),
    Spec("fixity", "flows.operations", "fixity_check",
         "Re-read the archive against the ledger's SM3/SHA-256 (weekly, Sunday 04:00).", cron="0 4 * * 0"),
    Spec("quarantine-retry", "flows.operations", "quarantine_retry",
         "Put quarantined matters through the stages again (on demand; parameter entries: ids, else all open)."),
    Spec("backfill", "flows.nightly", "backfill_transfer",
         "Archive what was completed in [since, until] again, without moving the watermark (on demand)."),
)


def _flow_object(spec: Spec) -> Any:
    """The flow a spec names (imported here, not at the top: `guidang --help` loads no Prefect)."""
    from flows import nightly, operations

    flow = getattr({"flows.nightly": nightly, "flows.operations": operations}[spec.module], spec.flow)
    if flow.name != spec.flow:  # the deployment's full name is flow/deployment
        raise InvariantBroken(f"{spec.module}.{spec.flow} is a flow named {flow.name}")
    return flow


def _environment(config: Path) -> dict[str, str]:
    return {"GUIDANG_CONFIG": str(config), "PYTHONPATH": str(PROJECT), "PREFECT_LOGGING_EXTRA_LOGGERS": "guidang"}


def _runner_deployment(spec: Spec, settings: Settings, config: Path, *, name: str, for_pool: bool) -> Any:
    from prefect.deployments.runner import EntrypointType
    from prefect.runner.storage import LocalStorage
    from prefect.schedules import Cron

    schedules = [Cron(spec.cron, timezone=settings.timezone)] if spec.cron else None
    kwargs: dict[str, Any] = {}
    if for_pool:
        kwargs["job_variables"] = {"working_dir": str(PROJECT), "env": _environment(config)}
    deployment = _flow_object(spec).to_deployment(
        name=name, description=spec.description, schedules=schedules, concurrency_limit=spec.concurrency,
        parameters={"config": str(config), **spec.parameters}, tags=["guidang"],
        entrypoint_type=EntrypointType.MODULE_PATH, **kwargs,
    )
    if for_pool:
        deployment.storage = LocalStorage(str(PROJECT))  # pull step: run in the project folder
    return deployment


# ---------------------------------------------------------------- work pool and blocks


def ensure_pool(client: Any, pool: str) -> bool:
    """The process work pool `pool`, created when missing; True when created. A pool of another type
    is refused: its workers would not run guidang's flows as the deployments expect."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    try:
        existing = client.read_work_pool(pool)
    except ObjectNotFound:
        client.create_work_pool(WorkPoolCreate(name=pool, type="process",
                                               base_job_template=ProcessWorker.get_default_base_job_template()))
        return True
    if existing.type != "process":
        raise GuidangError(f"work pool {pool!r} is of type {existing.type!r}; guidang deploys to a process pool "
                           "(choose another --pool name)")
    return False


def notification_block_id(client: Any, reference: str) -> Any:
    """The id of the notification block `type-slug/name` that alerts.notification_block names."""
    from prefect.exceptions import ObjectNotFound

    slug, _, name = reference.partition("/")
    try:
        return client.read_block_document_by_name(name=name, block_type_slug=slug).id
    except ObjectNotFound as exc:
        raise GuidangError(f"alerts.notification_block: no {slug} block named {name!r} on the Prefect server; "
                           "create it first (README, Deployment)") from exc


# ---------------------------------------------------------------- automations


def automations(settings: Settings, block_id: Any) -> list[Any]:
    """What operations are told: a night failed or crashed, quarantined too much, or none completed."""
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    a = settings.alerts
    night = {"prefect.resource.id": "guidang.night.*"}
    detail = ("{{ event.resource.name }} ({{ event.event }}): {{ event.payload.totals }} "
              "{{ event.payload.error }}")

    def notify(subject: str, body: str) -> list[Any]:
        return [SendNotification(block_document_id=block_id, subject=f"guidang: {subject}", body=body)]

    return [
        AutomationCore(
            name=f"{AUTOMATION_PREFIX}night failed", description="a night (or backfill) ended failed",
            trigger=EventTrigger(expect={"guidang.night.failed"}, match=night, posture=Posture.Reactive,
                                 threshold=1, within=timedelta(0)),
            actions=notify("night failed", "night failed: " + detail), tags=["guidang"]),
        AutomationCore(
            name=f"{AUTOMATION_PREFIX}night crashed",
            description="a night's process died (worker killed, out of memory): no guidang event was sent",
            trigger=EventTrigger(expect={"prefect.flow-run.Crashed"},
                                 match={"prefect.resource.id": "prefect.flow-run.*"},
                                 match_related={"prefect.resource.role": "flow",
                                                "prefect.resource.name": list(NIGHT_FLOWS)},
                                 posture=Posture.Reactive, threshold=1, within=timedelta(0)),
            actions=notify("night crashed", "night crashed: {{ event.resource.name }}"), tags=["guidang"]),
        AutomationCore(
            name=f"{AUTOMATION_PREFIX}too many quarantined",
            description=f"one night quarantined more than {a.quarantined_more_than} matters",
            trigger=EventTrigger(expect={"guidang.matter.quarantined"},
                                 match={"prefect.resource.id": "guidang.matter.*"},
                                 for_each={"guidang.night"}, posture=Posture.Reactive,
                                 threshold=a.quarantined_more_than + 1, within=timedelta(hours=12)),
            actions=notify("too many quarantined",
                           f"night {{{{ event.resource['guidang.night'] }}}} quarantined more than "
                           f"{a.quarantined_more_than} matters (guidang quarantine list)"), tags=["guidang"]),
        AutomationCore(
            name=f"{AUTOMATION_PREFIX}no completed night",
            description=f"no night completed for {a.no_completed_night_hours} hours",
            trigger=EventTrigger(expect={"guidang.night.completed"}, match=night, posture=Posture.Proactive,
                                 threshold=1, within=timedelta(hours=a.no_completed_night_hours)),
            actions=notify("no completed night",
                           f"no guidang night has completed for {a.no_completed_night_hours} hours"),
            tags=["guidang"]),
    ]


def replace_automations(client: Any, wanted: list[Any]) -> list[str]:
    """guidang's automations as `wanted`: earlier ones of the same name deleted first (re-deploying)."""
    for old in client.read_automations():
        if old.name.startswith(AUTOMATION_PREFIX):
            client.delete_automation(old.id)
    for automation in wanted:
        client.create_automation(automation)
    return [a.name for a in wanted]


# ---------------------------------------------------------------- deploy and serve


def deploy(settings: Settings, pool: str = DEFAULT_POOL) -> dict[str, Any]:
    """Create the pool when missing, register (or update) the four deployments, set the automations."""
    from prefect import get_client

    config = settings.config_file
    if config is None:
        raise GuidangError("deploy needs the settings read from a file (its path is baked into the deployments)")
    config = Path(config).resolve()
    with get_client(sync_client=True) as client:
        block_id = (notification_block_id(client, settings.alerts.notification_block)
                    if settings.alerts.notification_block else None)  # refused before anything is changed
        created = ensure_pool(client, pool)
    names = []
    for spec in SPECS:
        deployment = _runner_deployment(spec, settings, config, name=spec.name, for_pool=True)
        deployment.apply(work_pool_name=pool)
        names.append(f"{spec.flow}/{spec.name}")
    with get_client(sync_client=True) as client:
        made = replace_automations(client, automations(settings, block_id)) if block_id else []
    return {"pool": pool, "pool_created": created, "project": str(PROJECT), "config": str(config),
            "deployments": names, "automations": made,
            "notification_block": settings.alerts.notification_block}


def serve(settings: Settings) -> None:
    """Serve the four flows from this process under `served-…` names (never a deployed one's), with
    the configuration baked in the same way; runs start in subprocesses of this one."""
    from prefect import serve as prefect_serve

    config = Path(settings.config_file or "guidang.yaml").resolve()
    for key, value in _environment(config).items():  # the runs are subprocesses: they inherit these
        if key == "PYTHONPATH" and os.environ.get(key):
            value = os.pathsep.join([value, os.environ[key]])
        os.environ[key] = value
    deployments = [_runner_deployment(spec, settings, config, name=SERVED_PREFIX + spec.name, for_pool=False)
                   for spec in SPECS]
    prefect_serve(*deployments)
