"""`guidang disposition ...`: holds (冻结), appraisal of records due (到期鉴定), approval, the 销毁清单
and the destruction. Every step names its operator (`--user`, else $GUIDANG_USER, else the login
name, as `retention import` does) and is an event of the ledger.

Exit codes as elsewhere: 0 done, 1 refused by the rules or blocked by the store (the reason and
its code printed), 2 bad usage or configuration.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli.common import ConfigOpt, JsonOpt, echo_json, fail, load_config, open_ledger, parse_date
from schemas.findings import GuidangError, code_text

app = typer.Typer(help="Holds (冻结), appraisal of records due (到期鉴定), 销毁清单 and destruction.",
                  no_args_is_help=True)


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in a container without a passwd entry
        return "unknown"


UserOpt = Annotated[str, typer.Option("--user", envvar="GUIDANG_USER", show_default=False,
                                      help="who does this (recorded in the event); default the login name")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="why (recorded in the event)")]


def _refused(exc: GuidangError) -> typer.Exit:
    codes = ", ".join(f"{f.code} {code_text(f.code)}" for f in exc.findings)
    return fail(f"refused: {exc}" + (f" ({codes})" if codes else ""), 1)


def open_archive(settings: Any, *, required: bool = True) -> Any:
    """Every copy of the archive (the primary and its replicas): holds and destructions reach each."""
    from custody.every_copy import CopyUnavailable, open_every_copy

    try:
        return open_every_copy(settings)
    except CopyUnavailable as exc:
        raise fail(str(exc), 2) from exc
    except GuidangError as exc:
        raise fail(f"the archive repository cannot be opened: {exc}", 2) from exc


@contextmanager
def _working(config: Path, *, archive: bool = False) -> Iterator[tuple[Any, Any]]:
    """The ledger (and, with `archive`, every copy of the archive) a command works on; a rule the
    command breaks (a hold, the same user approving) ends it with exit 1, naming the codes."""
    settings = load_config(config)
    repository = open_archive(settings, required=True) if archive else None
    with open_ledger(settings) as ledger:
        try:
            yield ledger, repository
        except GuidangError as exc:
            raise _refused(exc) from exc


def _print(data: dict[str, Any], as_json: bool, text: str) -> None:
    if as_json:
        echo_json(data)
    else:
        typer.echo(text)


# ---------------------------------------------------------------- holds


@app.command("hold")
def hold(
    reason: ReasonOpt,
    code: Annotated[list[str] | None, typer.Option("--code", help="档号 (repeatable)")] = None,
    matter: Annotated[list[str] | None, typer.Option("--matter", help="办件编号 (repeatable)")] = None,
    unit: Annotated[str | None, typer.Option("--unit", help="every archived record of this 实施机构")] = None,
    query: Annotated[str | None, typer.Option("--query", help="records whose 题名 or 事项名称 contain this")] = None,
    user: UserOpt = "",
    config: ConfigOpt = Path("guidang.yaml"),
    as_json: JsonOpt = False,
) -> None:
    """Place a hold (冻结) on archived records: none of them may be decided for destruction or
    destroyed until it is released; on S3 their objects get the store's legal hold."""
    user = user.strip() or _login()
    from custody import disposition_holds
    from ledger.disposition_rules import Selector

    sel = Selector(tuple(code or ()), tuple(matter or ()), unit, query)
    with _working(config, archive=True) as (ledger, repository):
        out = disposition_holds.place(ledger, repository, sel, reason=reason, user=user)
    _print(out.to_dict(), as_json, f"hold {out.hold_id} placed by {user} on {len(out.archival_codes)} record(s); "
           f"store legal hold on {out.objects_locked} object(s)" + "".join(f"\n  {n}" for n in set(out.notes)))
    if out.errors:
        raise typer.Exit(1)


@app.command("release")
def release(
    hold_id: Annotated[int, typer.Argument(help="the hold's number (see `disposition holds`)")],
    reason: ReasonOpt,
    user: UserOpt = "",
    config: ConfigOpt = Path("guidang.yaml"),
    as_json: JsonOpt = False,
) -> None:
    """Release a hold; the store's legal hold is cleared where no other hold and no 永久 keeps it."""
    user = user.strip() or _login()
    from custody import disposition_holds

    with _working(config, archive=True) as (ledger, repository):
        out = disposition_holds.release(ledger, repository, hold_id, reason=reason, user=user)
    _print(out.to_dict(), as_json, f"hold {hold_id} released by {user}; store legal hold cleared on "
           f"{out.objects_locked} object(s)" + "".join(f"\n  {n}" for n in set(out.notes)))
    if out.errors:
        raise typer.Exit(1)


@app.command("holds")
def holds_command(
    every: Annotated[bool, typer.Option("--all", help="released holds too")] = False,
    config: ConfigOpt = Path("guidang.yaml"),
    as_json: JsonOpt = False,
) -> None:
    """The holds in force (or all), each with its reason, who placed it and its records."""
    from custody import disposition_holds

    settings = load_config(config)
    with open_ledger(settings) as ledger:
        rows = disposition_holds.listing(ledger, released_too=every)
    if as_json:
        echo_json({"holds": rows})
        return
    typer.echo(f"{len(rows)} hold(s)" + ("" if every else " in force"))
    for h in rows:
        state = f"released {h['released_at']} by {h['released_by']}: {h['release_reason']}" if h["released_at"] \
            else "in force"
        typer.echo(f"  {h['hold']}: {h['placed_at']} by {h['placed_by']}: {h['reason']} — {state}; "
                   f"{len(h['archival_codes'])} record(s): {', '.join(h['archival_codes'][:5])}")


# ---------------------------------------------------------------- appraisal


@app.command("open")
def open_command(
    before: Annotated[str, typer.Option("--before", help="records due before this date (YYYY-MM-DD)")],
    fonds: Annotated[str | None, typer.Option("--fonds", help="全宗号")] = None,
    unit: Annotated[str | None, typer.Option("--unit", help="实施机构")] = None,
    matter_type: Annotated[str | None, typer.Option("--matter-type", help="事项类型")] = None,
    user: UserOpt = "",
    config: ConfigOpt = Path("guidang.yaml"),
    as_json: JsonOpt = False,
) -> None:
    """Open an appraisal (到期鉴定) of the archived records due before DATE (永久 never falls due)."""
    user = user.strip() or _login()
    from ledger import disposition_rules

    day = parse_date(before, "--before")
    if day is None:
        raise fail("--before DATE is required", 2)
    with _working(config) as (ledger, _), ledger.transaction() as s:
        rv = disposition_rules.open_review(s, day, user=user, fonds=fonds, unit=unit, matter_type=matter_type)
        codes = [i.archival_code for i in disposition_rules.items(s, rv.id)]
        rid = rv.id
    _print({"review": rid, "archival_codes": codes, "opened_by": user}, as_json,
           f"appraisal {rid} opened by {user}: {len(codes)} record(s) due before {before}")


@app.command("decide")
def decide(
    review_id: Annotated[int, typer.Argument(help="the appraisal's number")],
    decision: Annotated[str, typer.Argument(help="destroy or extend")],
    code: Annotated[list[str], typer.Option("--code", help="档号 (repeatable)")],
    reason: ReasonOpt,
    period: Annotated[str | None, typer.Option("--period", help="extend: the new 保管期限 (D30, Y)")] = None,
    user: UserOpt = "",
    config: ConfigOpt = Path("guidang.yaml"),
    as_json: JsonOpt = False,
) -> None:
    """An appraiser's decision for records of an appraisal: destroy, or extend to a longer 保管期限."""
    user = user.strip() or _login()
    from ledger import disposition_rules
    from schemas.model import RetentionPeriod

    if decision not in ("destroy", "extend"):
        raise fail(f"decision {decision!r}: give destroy or extend", 2)
    try:
        new = RetentionPeriod(period) if period else None
    except ValueError as exc:
        raise fail(f"--period {period!r}: give D10, D30 or Y", 2) from exc
    with _working(config) as (ledger, _), ledger.transaction() as s:
        for c in code:
            disposition_rules.decide(s, review_id, c, decision, reason=reason, user=user, new_period=new)
    _print({"review": review_id, "decision": decision, "archival_codes": code, "by": user}, as_json,
           f"appraisal {review_id}: {decision} recorded by {user} for {len(code)} record(s)")


@app.command("approve")
def approve(
    review_id: Annotated[int, typer.Argument(help="the appraisal's number")],
    user: UserOpt = "",
    config: ConfigOpt = Path("guidang.yaml"),
    as_json: JsonOpt = False,
) -> None:
    """A second person (never an appraiser) approves every decision: extensions take effect, the
    records to destroy become the 销毁清单 (`disposition list`), destroyed by `disposition destroy`."""
    user = user.strip() or _login()
    from custody.appraisal import approve_review

    with _working(config, archive=True) as (ledger, repository):
        out = approve_review(ledger, repository, review_id, user=user)
    _print(out, as_json, f"appraisal {review_id} approved by {user}: {len(out['destroy'])} to destroy, "
           f"{len(out['extend'])} extended")


@app.command("show")
def show(
    review_id: Annotated[int | None, typer.Argument(help="one appraisal; none: all of them")] = None,
    config: ConfigOpt = Path("guidang.yaml"),
    as_json: JsonOpt = False,
) -> None:
    """The appraisals, or one with every record's decision, who decided and what became of it."""
    from custody.appraisal import describe

    with _working(config) as (ledger, _):
        data = describe(ledger, review_id)
    if as_json:
        echo_json(data)
        return
    for rv in data["reviews"]:
        typer.echo(f"appraisal {rv['review']}: {rv['status']}; due before {rv['before']}; opened by {rv['opened_by']}"
                   + (f", approved by {rv['approved_by']}" if rv["approved_by"] else ""))
        for i in rv.get("items", []):
            typer.echo(f"  {i['archival_code']}: {i['decision'] or '-'} {i['new_period'] or ''} "
                       f"({i['decided_by'] or '-'}) {i['outcome'] or ''} {i['outcome_note'] or ''}".rstrip())


# ---------------------------------------------------------------- 销毁清单 and destruction


@app.command("list")
def list_command(
    review_id: Annotated[int, typer.Argument(help="the appraisal's number")],
    html_out: Annotated[Path | None, typer.Option("--html", metavar="F.html", help="write the A4 page here")] = None,
    pdf_out: Annotated[Path | None, typer.Option("--pdf", metavar="F.pdf", help="write an A4 PDF here")] = None,
    config: ConfigOpt = Path("guidang.yaml"),
    as_json: JsonOpt = False,
) -> None:
    """The 销毁清单 of an appraisal (A4, with the appraisers, the approver and signature lines)."""
    from custody.destruction_list import gather, write_html, write_pdf

    if html_out is None and pdf_out is None:
        raise fail("give --html F.html and/or --pdf F.pdf", 2)
    for out, suffix in ((html_out, ".html"), (pdf_out, ".pdf")):
        if out is not None and (out.suffix.lower() != suffix or not out.parent.is_dir()):
            raise fail(f"{out}: write a {suffix} file into an existing folder", 2)
    with _working(config) as (ledger, _):
        data = gather(ledger, review_id)
    pages = None
    if html_out is not None:
        write_html(data, html_out)
    if pdf_out is not None:
        try:
            pages = write_pdf(data, pdf_out)
        except GuidangError as exc:
            raise fail(str(exc), 2) from exc
    written = [str(p) for p in (html_out, pdf_out) if p is not None]
    _print({"review": review_id, "rows": data.rows, "html": str(html_out) if html_out else None,
            "pdf": str(pdf_out) if pdf_out else None, "pdf_pages": pages}, as_json,
           f"销毁清单 of appraisal {review_id}: {len(data.rows)} record(s); written: {', '.join(written)}")


@app.command("destroy")
def destroy_command(
    review_id: Annotated[int, typer.Argument(help="the approved appraisal's number")],
    user: UserOpt = "",
    config: ConfigOpt = Path("guidang.yaml"),
    as_json: JsonOpt = False,
) -> None:
    """Destroy the approved records' content where the store allows it (never before retain-until,
    never under a legal hold or a hold, never 永久); 元数据, manifests and a tombstone are kept.
    Run again after a crash, or once a blocked record's retention has ended. Exit 1 if any is blocked."""
    user = user.strip() or _login()
    from custody.destruction import destroy

    with _working(config, archive=True) as (ledger, repository):
        out = destroy(ledger, repository, review_id, user=user)
    text = f"appraisal {review_id}: {len(out.destroyed)} record(s) destroyed by {user}, " \
           f"{out.objects_deleted} object(s) deleted; {len(out.blocked)} blocked"
    _print(out.to_dict(), as_json, text + "".join(f"\n  {c}: {why}" for c, why in out.blocked.items()))
    if out.blocked:
        raise typer.Exit(1)
