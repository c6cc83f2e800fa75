"""`guidang deploy` and `guidang serve`: the flows on a Prefect server, run by workers or by this host.

Both need PREFECT_API_URL (a persistent server: README "Deployment"); without it Prefect would
start a temporary server that forgets the deployments when the command ends, so both refuse.
"""

import os
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.common import ConfigOpt, JsonOpt, echo_json, fail, load_config
from schemas.findings import GuidangError

PoolOpt = Annotated[str, typer.Option("--pool", help="the process work pool the deployments use (created if missing)")]


def _need_server(command: str) -> None:
    from prefect.settings import PREFECT_API_URL

    if not (os.environ.get("PREFECT_API_URL") or PREFECT_API_URL.value()):
        raise fail(f"{command} needs a Prefect server: set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api; "
                   "README, Deployment)")


def deploy(config: ConfigOpt = Path("guidang.yaml"), pool: PoolOpt = "guidang", as_json: JsonOpt = False) -> None:
    """Register the deployments nightly (02:00), fixity (weekly), quarantine-retry and backfill
    (on demand) with this config and project folder baked in, and the alert automations."""
    settings = load_config(config)
    _need_server("guidang deploy")
    from flows.deploy import deploy as do_deploy

    try:
        result = do_deploy(settings, pool)
    except GuidangError as exc:
        raise fail(str(exc)) from exc
    except Exception as exc:  # the server refused or could not be reached
        raise fail(f"Prefect server: {exc.__class__.__name__}: {exc}", 1) from exc
    if as_json:
        echo_json(result)
        return
    typer.echo(f"work pool {result['pool']} ({'created' if result['pool_created'] else 'exists'}, type process)")
    for name in result["deployments"]:
        typer.echo(f"deployment {name}")
    typer.echo(f"  config {result['config']}; project {result['project']}")
    if result["automations"]:
        typer.echo(f"automations → {result['notification_block']}: " + ", ".join(result["automations"]))
    else:
        typer.echo("no automations: set alerts.notification_block in guidang.yaml to be notified")
    typer.echo(f"start a worker: prefect worker start --pool {result['pool']}")


def serve(config: ConfigOpt = Path("guidang.yaml")) -> None:
    """Serve nightly (02:00), fixity (weekly), quarantine-retry and backfill from this process, as
    deployments named served-… (never a deployed one's name); Ctrl-C stops and pauses them."""
    settings = load_config(config)
    _need_server("guidang serve")
    from flows.deploy import serve as do_serve

    do_serve(settings)
