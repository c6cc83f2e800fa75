"""`guidang audit ...`: what the archive bureau (档案局/馆) checks of the ledger and the archive.

Exit codes as elsewhere: 0 all well, 1 something is wrong (each finding printed, `--json` lists
them all), 2 bad usage or configuration (found before any work).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flows.cli.audit_bureau import reconcile_command, rollout_command
from flows.cli.audit_log import log_command
from flows.cli.common import ConfigOpt, JsonOpt, echo_json, fail, load_config, open_ledger
from flows.cli.progress_bars import progress_bar, show_progress
from schemas.errors import InvariantBroken
from schemas.findings import GuidangError, code_text

if TYPE_CHECKING:
    from connectors.repositories import Repository
    from schemas.config import Settings

app = typer.Typer(help="Audit the ledger and the archive (档案局/馆).", no_args_is_help=True)


def open_archive(settings: Settings, *, required: bool) -> Repository | None:
    """The archive repository; when it cannot be opened: exit 2 if `required`, else None (reported)."""
    from connectors.repositories import open_repository

    try:
        return open_repository(settings.repository, base_dir=settings.base_dir)
    except GuidangError as exc:
        if required:
            raise fail(f"the archive repository cannot be opened: {exc}", 2) from exc
        return None


@app.command("verify")
def verify(config: ConfigOpt = Path("guidang.yaml"), as_json: JsonOpt = False) -> None:
    """Recompute the event chain, compare every matter row with its last event, and check the ledger
    against every checkpoint in the archive repository. Exit 1 if anything differs."""
    from custody.audit_verify import verify_ledger

    settings = load_config(config)
    repository = open_archive(settings, required=False)
    with open_ledger(settings) as ledger:
        result = verify_ledger(ledger, repository)
    if as_json:
        echo_json(result.to_dict())
    else:
        typer.echo(f"{result.events} events checked; chain head {result.chain_head[1]} (event {result.chain_head[0]})")
        typer.echo(f"{result.rows} matter rows checked; {result.checkpoints} checkpoint(s) in the repository checked"
                   + (f"; {result.destroyed} destroyed record(s), each tombstone checked" if result.destroyed else ""))
        for f in result.findings:
            typer.echo(f"  {f}  ({code_text(f.code)})")
        typer.echo("OK: the ledger is intact and agrees with every checkpoint" if result.ok
                   else f"FAILED: {len(result.findings)} problem(s)")
    if not result.ok:
        raise typer.Exit(1)


@app.command("fixity")
def fixity(
    config: ConfigOpt = Path("guidang.yaml"),
    sample: Annotated[int | None, typer.Option("--sample", min=1, metavar="N",
                                               help="re-read N packages picked at random")] = None,
    every: Annotated[bool, typer.Option("--all", help="re-read every package (the default)")] = False,
    copy: Annotated[str, typer.Option("--copy", metavar="NAME", help="which copy: primary (the default) or a "
                                      "replica's name; a wrong object is repaired from another copy")] = "primary",
    as_json: JsonOpt = False,
) -> None:
    """Re-read a copy's objects and compare them with the ledger's SM3 and SHA-256; report missing,
    changed and unexpected objects by key; repair a changed or missing one from another copy (replicas:)
    whose bytes match the ledger; record the result as an event. Exit 1 if anything is left wrong."""
    from custody.repair import NoSuchCopy, check_and_repair

    if sample is not None and every:
        raise fail("--sample and --all exclude each other", 2)
    settings = load_config(config)
    with open_ledger(settings) as ledger, progress_bar("复核 fixity: objects re-read",
                                                       enabled=show_progress(as_json)) as bar:
        try:
            result, seq = check_and_repair(ledger, settings, copy, sample=sample, progress=bar.to)
        except NoSuchCopy as exc:
            raise fail(str(exc), 2) from exc
        except GuidangError as exc:  # the store could not be listed: nothing was checked
            raise fail(f"fixity not checked: {exc}", 1) from exc
    if as_json:
        echo_json(result.to_dict() | {"event": seq})
    else:
        c = result.counts()
        typer.echo(f"{result.packages} package(s) in the ledger, {result.packages_read} re-read ({result.mode}); "
                   f"{result.objects_read} object(s), {result.bytes_read} bytes read; "
                   f"{result.objects_listed} object(s) in the repository")
        for f in [*result.findings, *result.repaired]:
            typer.echo(f"  {f}")
        typer.echo(f"recorded as event {seq}")
        typer.echo("OK: every object is as the ledger recorded it" if result.ok else
                   f"FAILED: {c['missing']} missing, {c['changed']} changed, {c['unexpected']} unexpected")
    if not result.ok:
        raise typer.Exit(1)


app.command("log")(log_command)


@app.command("register")
def register(
    config: ConfigOpt = Path("guidang.yaml"),
    night: Annotated[str | None, typer.Option("--night", metavar="YYYY-MM-DD",
                                              help="the night's packages (runs whose 归档时间 is that day)")] = None,
    batch: Annotated[str | None, typer.Option("--batch", metavar="ID", help="a DA/T 93 batch's packages")] = None,
    xlsx: Annotated[Path | None, typer.Option("--xlsx", metavar="F.xlsx", help="write the workbook here")] = None,
    html_out: Annotated[Path | None, typer.Option("--html", metavar="F.html", help="write the A4 page here")] = None,
    as_json: JsonOpt = False,
) -> None:
    """A night's or a batch's 移交与接收登记表 and 目录 (A4 HTML, XLSX), its totals checked against what the
    repository holds. Exit 1 when they differ, 2 for bad usage or nothing to register."""
    from custody.register_gather import NothingToRegister, build_register
    from flows.cli.common import parse_date
    from packager.register import catalogue_rows, write_html, write_xlsx

    if (night is None) == (batch is None):
        raise fail("give --night DATE or --batch ID (one of them)", 2)
    for out, suffix in ((xlsx, ".xlsx"), (html_out, ".html")):
        if out is not None and (out.suffix.lower() != suffix or not out.parent.is_dir()):
            raise fail(f"{out}: write a {suffix} file into an existing folder", 2)
    day = parse_date(night, "--night")
    settings = load_config(config)
    repository = open_archive(settings, required=True)
    if repository is None:
        raise InvariantBroken("open_archive(required=True) returned no repository")
    with open_ledger(settings) as ledger:
        try:
            data = build_register(ledger, repository, settings, night=day, batch=batch)
        except NothingToRegister as exc:
            raise fail(str(exc), 2) from exc
    if html_out is not None:
        write_html(data, html_out)
    if xlsx is not None:
        write_xlsx(data, xlsx)
    summary = {
        "title": data.title, "fonds": data.fonds, "agrees": data.agrees,
        "ledger": {"packages": data.ledger.packages, "files": data.ledger.files, "bytes": data.ledger.bytes,
                   "pages": data.ledger.pages},
        "repository": {"packages": data.repository.packages, "files": data.repository.files,
                       "bytes": data.repository.bytes},
        "problems": data.problems, "checkpoints": [a.seq for a in data.anchors],
        "catalogue": catalogue_rows(data), "html": str(html_out) if html_out else None,
        "xlsx": str(xlsx) if xlsx else None,
    }
    if as_json:
        echo_json(summary)
    else:
        t, r = data.ledger, data.repository
        typer.echo(f"{data.title} ({data.fonds}): {t.packages} 件, {t.files} 个文档, {t.bytes} 字节, {t.pages} 页")
        typer.echo(f"repository: {r.packages} complete package(s), {r.files} document(s), {r.bytes} bytes — "
                   + ("agrees with the ledger" if data.agrees else "DIFFERS from the ledger"))
        for p in data.problems:
            typer.echo(f"  {p}")
        for out in (html_out, xlsx):
            if out is not None:
                typer.echo(f"written: {out}")
    if not data.agrees:
        raise typer.Exit(1)


app.command("rollout")(rollout_command)
app.command("reconcile")(reconcile_command)
