"""A self-built system's rows as `Matter` (or `InvalidMatter`), by the column mapping of its
configuration alone.

Every problem names the canonical field *and* the source's column (or constant) behind it,
because the column is what the system's own people can look up and fix. Identifiers are
matched case-insensitively: PostgreSQL folds unquoted names to lower case while SQLite and
MariaDB keep them as written, and one configuration serves the same tables in all three. Naive
date-times are the source's local time (`timezone`); card numbers are masked in every text and
in the raw record a quarantined matter keeps.
"""

from __future__ import annotations

import json
import mimetypes
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from connectors.sources.sql_queries import MATTER_DATETIMES, REQUIRED_MATTER_FIELDS, STEP_DATETIMES
from connectors.sources.sql_values import BadValue, ValueReader, shown
from schemas.config import SqlSource
from schemas.findings import Finding, GuidangError
from schemas.masking import shown_text
from schemas.model import (
    Applicant,
    Document,
    DocumentGroup,
    InvalidMatter,
    Matter,
    Problem,
    ProcessStep,
    mask_id,
    mask_text,
)

Rows = tuple[Sequence[str], list[dict[str, Any]]]  # a result's column names and its rows
# A window row ready to build: its updated_at (None when unparseable), row number, project id, row.
Prepared = tuple[datetime | None, int, str | None, dict[str, Any]]

VALUE_CODE = "Q-SOURCE-VALUE"  # a value that cannot be decoded or is no plausible date-time


def _problem(message: str, exc: ValueError) -> Problem:
    return Problem(code=VALUE_CODE if isinstance(exc, BadValue) else "Q-SOURCE-INVALID", message=message)


class MatterMapping:
    """Builds one source's matters from its rows: the window row, its documents and its steps."""

    def __init__(self, config: SqlSource, tz: ZoneInfo) -> None:
        self.config = config
        self.name = config.name
        self.tz = tz
        self.values = ValueReader(config.encoding, config.fallback_encoding, config.earliest_year, tz)
        self.text = self.values.text
        self.document_owner: str | None = None  # the documents query's project-id column ("" when none)

    def prepare(self, keys: Sequence[str], rows: list[dict[str, Any]]) -> tuple[dict[str, str], list[Prepared]]:
        """The matter columns resolved, and the rows oldest first even if the query forgot its ORDER
        BY; unparseable times go first so that they reach quarantine rather than hold a watermark back."""
        cols = resolve_columns(self.name, keys, self.config.columns, "matters_query")
        prepared: list[Prepared] = []
        for n, row in enumerate(rows, 1):
            try:
                updated = self.to_datetime(row[cols["updated_at"]])
            except ValueError:
                updated = None
            try:
                pid = self.text(row[cols["project_id"]])
            except BadValue:
                pid = None  # quarantined as a row without a usable id; `without_id` says why
            prepared.append((updated, n, pid, row))
        prepared.sort(key=lambda t: (t[0] is not None, t[0] or datetime.min.replace(tzinfo=self.tz), t[1]))
        return cols, prepared

    def without_id(self, n: int, updated: datetime | None, row: dict[str, Any], cols: dict[str, str]) -> InvalidMatter:
        """Row `n` has no project id: it cannot be looked up, only quarantined as it is."""
        column = self.config.columns["project_id"]
        try:
            self.text(row[cols["project_id"]])
            problem = Problem(message=f"field project_id (column {column}): missing")
        except BadValue as exc:
            problem = _problem(f"field project_id (column {column}): {exc}", exc)
        return self._invalid(f"(row {n})", updated, row, cols, [problem])

    def unreadable_details(self, pid: str, updated: datetime | None, row: dict[str, Any], cols: dict[str, str],
                           reason: str) -> InvalidMatter:
        """The documents or steps of `pid` could not be read because of a value in them."""
        return self._invalid(pid, updated, row, cols, [Problem(
            code=VALUE_CODE, message=f"its documents or steps cannot be read: {reason}")])

    def build(
        self,
        pid: str,
        updated: datetime | None,
        row: dict[str, Any],
        cols: dict[str, str],
        docs: Rows,
        steps: Rows | None,
    ) -> Matter | InvalidMatter:
        problems: list[Problem] = []
        values: dict[str, Any] = {}
        for field, constant in self.config.constants.items():
            try:
                values[field] = self.to_datetime(constant) if field in MATTER_DATETIMES else constant
            except ValueError as exc:
                problems.append(Problem(message=f"field {field} (constant {constant!r}): {exc}"))
        for field, key in cols.items():
            raw = row[key]
            column = self.config.columns[field]
            try:
                values[field] = self.to_datetime(raw) if field in MATTER_DATETIMES else self.text(raw)
            except ValueError as exc:
                problems.append(_problem(f"field {field} (column {column}): {exc}", exc))
        unparsed = {p.message.split(" ", 2)[1] for p in problems}
        for field in REQUIRED_MATTER_FIELDS:
            if field not in unparsed and values.get(field) in (None, ""):
                origin = f"column {self.config.columns[field]}" if field in cols else "constant"
                problems.append(Problem(message=f"field {field} ({origin}): missing"))

        documents = self._documents(pid, docs, problems)
        process = self._steps(steps, problems) if steps is not None else []
        if not problems:
            applicant = {
                "name": values.pop("applicant_name"),
                "card_type": values.pop("applicant_card_type", None),
                "card_number": values.pop("applicant_card_number", None),
            }
            try:
                return Matter.model_validate({
                    **values, "source": self.name, "applicant": Applicant(**applicant),
                    "steps": process, "documents": documents,
                })
            except ValidationError as exc:
                problems.extend(self._validation_problems(exc, self.config.columns))
        return self._invalid(pid, updated, row, cols, problems)

    def _documents(self, pid: str, docs: Rows, problems: list[Problem]) -> list[Document]:
        keys, rows = docs
        mapping = dict(self.config.document_columns)
        if self.document_owner:
            mapping["project_id"] = self.document_owner
        if self.config.content.kind != "blob":
            mapping["_content"] = self.config.content.column
        cols = resolve_columns(self.name, keys, mapping, "documents_query")
        out: list[Document] = []
        for n, row in enumerate(rows, 1):
            values = self._decoded(row, cols, mapping, f"document {n}", problems, keep_type={"key", "size"})
            if values is None:
                continue
            file_name = values.get("file_name") or ""
            label = f"document {n} ({file_name or 'no file name'})"
            owner = values.get("project_id")
            if "project_id" in cols and owner != pid:
                problems.append(Problem(code="Q-DOC-FOREIGN", message=(
                    f"{label}: column {cols['project_id']} holds {owner!r}, not this matter's {pid!r}: the "
                    f"documents query returns another matter's rows")))
                continue
            group_raw = values.get("group") or ""
            try:
                group = self.config.group_values.get(group_raw) or DocumentGroup.parse(group_raw)
            except ValueError:
                problems.append(Problem(
                    message=f"{label}: field group (column {mapping['group']}): unknown value {group_raw!r}; "
                    f"map it under group_values (申报/过程/结果)"
                ))
                continue
            key = values.get("key", values.get("file_name"))
            if isinstance(key, Decimal):
                key = int(key) if key == key.to_integral_value() else str(key)
            elif not isinstance(key, int | str):
                key = self.text(key)
            if self.config.content.kind == "blob":
                locator = json.dumps({"project_id": pid, "key": key}, ensure_ascii=False)
            else:
                content = values.get("_content")
                if not content:
                    column = self.config.content.column
                    problems.append(Problem(message=f"{label}: field content (column {column}): missing"))
                    continue
                locator = json.dumps({"project_id": pid, self.config.content.kind: content}, ensure_ascii=False)
            media_type = values.get("media_type") or mimetypes.guess_type(file_name)[0]
            size = values.get("size")
            try:
                out.append(Document.model_validate({
                    "group": group,
                    "title": values.get("title") or PurePosixPath(file_name).stem or file_name,
                    "file_name": file_name,
                    "media_type": media_type or "application/octet-stream",
                    "size": int(size) if size not in (None, "") else None,
                    "source_sha256": values.get("source_sha256"),
                    "source_sm3": values.get("source_sm3"),
                    "locator": locator,
                }))
            except (ValidationError, ValueError, TypeError) as exc:
                if isinstance(exc, ValidationError):
                    problems.extend(p.within(label) for p in self._validation_problems(exc, mapping))
                else:
                    problems.append(Problem(message=f"{label}: field size (column {mapping.get('size')}): {exc}"))
        order = list(DocumentGroup)
        return sorted(out, key=lambda d: order.index(d.group))

    def _steps(self, steps: Rows, problems: list[Problem]) -> list[ProcessStep]:
        keys, rows = steps
        cols = resolve_columns(self.name, keys, self.config.step_columns, "steps_query")
        out: list[ProcessStep] = []
        for n, row in enumerate(rows, 1):
            values: dict[str, Any] = {}
            bad = False
            for field, key in cols.items():
                try:
                    values[field] = self.to_datetime(row[key]) if field in STEP_DATETIMES else self.text(row[key])
                except ValueError as exc:
                    column = self.config.step_columns[field]
                    problems.append(_problem(f"step {n}: field {field} (column {column}): {exc}", exc))
                    bad = True
            if bad:
                continue
            try:
                out.append(ProcessStep.model_validate(values))
            except ValidationError as exc:
                problems.extend(p.within(f"step {n}") for p in self._validation_problems(exc, self.config.step_columns))
        return out

    def _validation_problems(self, exc: ValidationError, mapping: Mapping[str, str]) -> list[Problem]:
        out: list[Problem] = []
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            msg = err["msg"].removeprefix("Value error, ")
            field = loc[0] if loc else ""
            if field == "applicant" and len(loc) > 1:
                field = f"applicant_{loc[1]}"
            if not field:
                # A check across fields (dates out of order): name the columns behind the fields.
                named = [f"{f}={c}" for f, c in mapping.items() if re.search(rf"\b{f}\b", msg)]
                text = msg + (f" (columns: {', '.join(named)})" if named else "")
            elif field in mapping:
                text = f"field {field} (column {mapping[field]}): {msg}"
            elif field in self.config.constants:
                text = f"field {field} (constant {self.config.constants[field]!r}): {msg}"
            else:
                text = f"field {'.'.join(loc)}: {msg}"
            out.append(Problem.from_error(err, text))
        return out

    def _invalid(
        self, pid: str, updated: datetime | None, row: dict[str, Any], cols: dict[str, str], problems: list[Problem]
    ) -> InvalidMatter:
        card_key = cols.get("applicant_card_number")
        card = self.values.json(row.get(card_key)) if card_key else None
        card = card if isinstance(card, str) else None
        raw = {k: self.values.json(v) for k, v in row.items()}
        if card_key and card:
            raw[card_key] = mask_id(card)
        # under the canonical names too, so that schemas/personal.py finds the applicant and the
        # 实施机构 whatever this source calls its columns
        for canonical in ("applicant_name", "applicant_card_type", "agency"):
            if cols.get(canonical) in raw:
                raw.setdefault(canonical, raw[cols[canonical]])
            elif canonical in self.config.constants:
                raw.setdefault(canonical, self.values.json(self.config.constants[canonical]))

        def clean(p: str) -> str:
            p = mask_text(p)
            return p.replace(card, mask_id(card) or "") if card else p

        return InvalidMatter(
            source=self.name, project_id=pid, updated_at=updated, raw=raw,
            findings=[
                Problem(code=p.code, message=clean(f"source {self.name}, project {pid}: {p.message}")) for p in problems
            ],
        )

    def to_datetime(self, value: object) -> datetime | None:
        """Naive values are the source's local time (`timezone`); text is parsed strictly and a date
        before the source's `earliest_year` refused (`sql_values`)."""
        return self.values.datetime(value)

    def describe(self, pid: object, updated: object) -> str:
        """A row no window collects, as the summary names it: its id and its update value, escaped."""
        column, value = self.config.columns["updated_at"], self.values.json(updated)
        return f"{shown_text(str(self.values.json(pid)))} ({column} = {'blank' if value is None else shown(value)})"

    def _decoded(self, row: dict[str, Any], cols: dict[str, str], mapping: Mapping[str, str], label: str,
                 problems: list[Problem], *, keep_type: set[str]) -> dict[str, Any] | None:
        """A document row's values as text (`keep_type` fields keep theirs unless bytes); None, with the
        problems recorded, when one of them cannot be decoded."""
        values: dict[str, Any] = {}
        bad = False
        for f, k in cols.items():
            raw = row[k]
            if f in keep_type and not isinstance(raw, bytes | bytearray | memoryview):
                values[f] = raw
                continue
            try:
                values[f] = self.text(raw)
            except BadValue as exc:
                problems.append(_problem(f"{label}: field {f} (column {mapping[f]}): {exc}", exc))
                bad = True
        return None if bad else values

    def source_time(self, value: datetime) -> datetime:
        """A window bound as the source's naive local time (aware input is converted)."""
        if value.tzinfo is None:
            return value
        return value.astimezone(self.tz).replace(tzinfo=None)


def resolve_columns(source: str, keys: Sequence[str], mapping: Mapping[str, str], what: str) -> dict[str, str]:
    """Field -> the result column it names, matched exactly or else case-insensitively; a column the
    query does not return is the configuration's mistake (SQL-CONFIG-COLUMN), not a matter's."""
    exact = set(keys)
    folded = {k.casefold(): k for k in keys}
    resolved: dict[str, str] = {}
    findings = []
    for field, column in mapping.items():
        if column in exact:
            resolved[field] = column
        elif column.casefold() in folded:
            resolved[field] = folded[column.casefold()]
        else:
            findings.append(Finding(
                "SQL-CONFIG-COLUMN", f"source {source}: {what}",
                f"field {field} is mapped to column {column!r}, which the query does not return "
                f"(it returns: {', '.join(keys)})",
            ))
    if findings:
        raise GuidangError("\n".join(map(str, findings)), findings)
    return resolved
