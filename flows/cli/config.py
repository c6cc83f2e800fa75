"""`guidang config check [F]`: is this guidang.yaml right, and do its sources' queries fit their mapping?

Answers before a night is run (and without running one): the file loads; each sql source's mapping
passes the connector's own checks; each query uses exactly the parameters it is given (`:since` and
`:until`, `:project_id`, `:archival_code` for the acknowledgement, `:start` and `:end` for the
count and list queries) and prepares against its database, wrapped so that it returns no row
(`WHERE 1 = 0`), and every column named in `columns`, `document_columns`, `step_columns`,
`count_columns`, `list_columns` and `content.column` is in its result; the unified source answers
an empty window and counts its completed matters in it. Nothing is written anywhere (the
acknowledgement statement is never run).

Exit 0 when everything is fine, 2 when a configuration problem was found (each named: source, key,
column), 1 when a source could not be reached at all.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flows.cli.common import ConfigOpt, JsonOpt, echo_json, load_config
from schemas.findings import Finding, GuidangError

if TYPE_CHECKING:
    from schemas.config import Settings, SqlSource, UnifiedSource

app = typer.Typer(help="check guidang.yaml", no_args_is_help=True)

# Parameters each statement is given by the connector; a query must use the required ones.
_PARAMETERS = {
    "matters_query": ({"since", "until"}, {"since", "until"}),
    "documents_query": ({"project_id"}, {"project_id"}),
    "steps_query": ({"project_id"}, {"project_id"}),
    "ack_statement": (set(), {"project_id", "archival_code"}),
    "count_query": ({"start", "end"}, {"start", "end"}),
    "list_query": ({"start", "end"}, {"start", "end"}),
}
# Statements whose result columns are checked against a mapping, and the mapping's key.
_MAPPED = ("matters_query", "documents_query", "steps_query", "count_query", "list_query")
_EMPTY_WINDOW = datetime(2000, 1, 1, tzinfo=UTC)


class _Unreachable(Exception):
    """The source did not answer at all (not a mistake in the configuration)."""


def _problem(source: str, key: str, message: str) -> Finding:
    return Finding("CONFIG-CHECK", f"source {source}: {key}", message)


def _parameters(name: str, what: str, sql: str) -> tuple[list[Finding], bool]:
    """(problems, runnable): a query using a parameter guidang never gives cannot even be prepared."""
    from sqlalchemy import text

    used = set(text(sql).compile().params)
    required, allowed = _PARAMETERS[what]
    out = [_problem(name, what, f"does not use :{p}") for p in sorted(required - used)]
    out += [_problem(name, what, f"uses :{p}, which guidang never gives (it gives "
                     f"{', '.join(':' + a for a in sorted(allowed))})") for p in sorted(used - allowed)]
    return out, used <= allowed


def _result_keys(conn: Any, sql: str, what: str) -> list[str]:
    from sqlalchemy import DateTime, bindparam, text

    from connectors.sources.sql_queries import strip_sql

    stmt = text(f"SELECT * FROM (\n{strip_sql(sql)}\n) guidang_check WHERE 1 = 0")
    params: dict[str, Any] = {"project_id": ""}
    bounds = {"matters_query": ("since", "until"), "count_query": ("start", "end"), "list_query": ("start", "end")}
    if what in bounds:
        used = [n for n in bounds[what] if n in stmt.compile().params]  # one missing is reported, not fatal
        stmt = stmt.bindparams(*(bindparam(n, type_=DateTime()) for n in used))
        params = dict.fromkeys(used, datetime(2000, 1, 1))
    return list(conn.execute(stmt, params).keys())


def check_sql(source: SqlSource, base_dir: Path) -> tuple[list[Finding], list[str]]:
    """(problems, notes) of one sql source; raises _Unreachable when its database cannot be opened."""
    from sqlalchemy import create_engine
    from sqlalchemy import exc as sa_exc
    from sqlalchemy.engine import make_url

    from connectors.sources.sql_mapping import resolve_columns
    from connectors.sources.sql_queries import check_config, resolve_sqlite

    name = source.name
    try:
        check_config(source)
    except GuidangError as exc:
        return list(exc.findings), []
    statements = {"matters_query": source.matters_query, "documents_query": source.documents_query}
    if source.steps_query:
        statements["steps_query"] = source.steps_query
    if source.ack_statement:
        statements["ack_statement"] = source.ack_statement
    if source.count_query:
        statements["count_query"] = source.count_query
    if source.list_query:
        statements["list_query"] = source.list_query
    problems: list[Finding] = []
    runnable = set()
    for what, sql in statements.items():
        found, ok = _parameters(name, what, sql)
        problems += found
        if ok:
            runnable.add(what)
    url = resolve_sqlite(make_url(source.url), base_dir)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).is_file():
        raise _Unreachable(f"source {name}: database file not found: {url.database}")
    document_columns = dict(source.document_columns) | {"content.column": source.content.column}
    mappings = {"matters_query": ("columns", source.columns), "documents_query": ("document_columns",
                document_columns), "steps_query": ("step_columns", source.step_columns),
                "count_query": ("count_columns", source.count_columns),
                "list_query": ("list_columns", source.list_columns)}
    notes = []
    engine = create_engine(url)
    try:
        try:
            conn = engine.connect()
        except sa_exc.DBAPIError as exc:
            raise _Unreachable(f"source {name}: cannot connect: {exc.orig}") from exc
        with conn:
            for what in _MAPPED:
                if what not in runnable:
                    continue
                key, mapping = mappings[what]
                try:
                    keys = _result_keys(conn, statements[what], what)
                except sa_exc.DBAPIError as exc:
                    conn.rollback()
                    problems.append(_problem(name, what, f"does not prepare: {str(exc.orig).strip()}"))
                    continue
                try:
                    resolve_columns(name, keys, mapping, what)
                except GuidangError as exc:
                    problems += [_problem(name, key, f.message) for f in exc.findings]
                notes.append(f"{what} returns {len(keys)} column(s)")
                owner = source.document_columns.get("project_id") or source.columns["project_id"]
                if what == "documents_query" and owner.casefold() not in {k.casefold() for k in keys}:
                    notes.append(f"warning: documents_query returns no {owner} column (the matter's 办件编号; or "
                                 "map document_columns.project_id), so a row of another matter would not be noticed")
    finally:
        engine.dispose()
    if not source.count_query:
        notes.append("no count_query: `audit reconcile` cannot count this source's completed matters")
    return problems, notes


def check_unified(source: UnifiedSource) -> list[str]:
    """The unified source answers an empty window; raises _Unreachable when it does not."""
    from connectors.sources.unified import UnifiedConnector
    from schemas.errors import SourceUnavailable

    try:
        with UnifiedConnector(source) as connector:
            listed = sum(1 for _ in connector.completed_between(_EMPTY_WINDOW, _EMPTY_WINDOW))
            counted = sum(c.count for c in connector.count_completed(_EMPTY_WINDOW, _EMPTY_WINDOW))
    except SourceUnavailable as exc:
        raise _Unreachable(str(exc)) from exc
    return [f"answers (an empty window lists {listed} record(s))",
            f"counts its completed matters (an empty window counts {counted})"]


def check_settings(settings: Settings) -> dict[str, Any]:
    """Every source checked; {"sources": {name: {...}}, "problems": [...], "unreachable": [...]}."""
    out: dict[str, Any] = {"sources": {}, "problems": [], "unreachable": []}
    for source in settings.sources:
        entry: dict[str, Any] = {"kind": source.kind, "notes": [], "problems": []}
        try:
            if source.kind == "sql":
                problems, entry["notes"] = check_sql(source, settings.base_dir)
            else:
                problems, entry["notes"] = [], check_unified(source)
        except _Unreachable as exc:
            out["unreachable"].append(str(exc))
            entry["unreachable"] = str(exc)
            problems = []
        except GuidangError as exc:  # e.g. the token's environment variable is not set
            problems = list(exc.findings) or [_problem(source.name, source.kind, str(exc))]
        entry["problems"] = [p.to_dict() for p in problems]
        out["problems"] += entry["problems"]
        out["sources"][source.name] = entry
    return out


@app.command("check")
def check(
    file: Annotated[Path | None, typer.Argument(metavar="[F]", help="guidang.yaml (default: --config)")] = None,
    config: ConfigOpt = Path("guidang.yaml"),
    as_json: JsonOpt = False,
) -> None:
    """Validate a configuration and its sources' queries without running a night.

    Exit 0 when fine, 2 for configuration problems (each named: source, key, column), 1 when a
    source could not be reached."""
    path = file or config
    settings = load_config(path)  # exit 2 naming the key when the file itself is wrong
    result = check_settings(settings)
    if as_json:
        echo_json({"config": str(path), **result})
    else:
        typer.echo(f"{path}: loads ({len(settings.fonds)} fonds, {len(settings.sources)} source(s))")
        for name, entry in result["sources"].items():
            state = "PROBLEM" if entry["problems"] else "UNREACHABLE" if "unreachable" in entry else "ok"
            typer.echo(f"source {name} ({entry['kind']}): {state}" + "".join(f"; {n}" for n in entry["notes"]))
            for p in entry["problems"]:
                typer.echo(f"  [{p['code']}] {p['where']}: {p['message']}")
            if "unreachable" in entry:
                typer.echo(f"  {entry['unreachable']}")
    if result["problems"]:
        raise typer.Exit(2)
    if result["unreachable"]:
        raise typer.Exit(1)
