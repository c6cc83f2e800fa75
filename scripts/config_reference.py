"""Generate the configuration reference of guidang.yaml from the config model, so it cannot drift:
docs/configuration.md (every key with type, default, whether required and meaning, plus the keys of
a sql source's `columns`, `document_columns` and `step_columns`) and schemas/guidang.schema.json (a
JSON Schema editors use for completion and checking, e.g. with a `# yaml-language-server: $schema=`
line). `tests/test_config_check.py` checks that the committed files equal what this writes.

    python scripts/config_reference.py          # rewrite both files
    python scripts/config_reference.py --check  # exit 1 when either is out of date
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from connectors.sources.sql_queries import (
    COLUMN_ONLY_FIELDS,
    DOCUMENT_FIELDS,
    MATTER_FIELDS,
    REQUIRED_DOCUMENT_FIELDS,
    REQUIRED_MATTER_FIELDS,
    STEP_FIELDS,
)
from schemas.config import Settings

ROOT = Path(__file__).resolve().parent.parent
MARKDOWN = ROOT / "docs" / "configuration.md"
JSON_SCHEMA = ROOT / "schemas" / "guidang.schema.json"
SCHEMA_ID = "https://guidang.example/schemas/guidang.schema.json"

# What each canonical field of a sql source means (the key lists themselves are the connector's).
FIELD_MEANINGS: dict[str, str] = {
    "project_id": "办件编号: identifies the record in its source; under document_columns, every document row's "
                  "must equal its matter's (checked also when the documents query returns the matters' id column)",
    "service_code": "事项编码",
    "service_version": "事项版本",
    "service_name": "事项名称",
    "matter_type": "事项类型 code (e.g. 01); a constant for a system whose records are all of one type",
    "handling_type": "办件类型 (即办件 / 承诺件)",
    "agency": "实施机构",
    "agency_code": "实施机构代码 (统一社会信用代码)",
    "region_code": "区划代码",
    "applicant_name": "申请人名称",
    "applicant_card_type": "申请人证件类型",
    "applicant_card_number": "申请人证件号码 (masked wherever it is shown)",
    "result": "办理结果",
    "decided_at": "决定时间",
    "result_document_number": "结果文书文号",
    "license_name": "证照名称",
    "license_number": "证照编号",
    "received_at": "受理时间",
    "completed_at": "办结时间: decides the year, the retention version in force and the disposition date",
    "updated_at": "更新时间: drives the watermark and decides the window a row falls in",
    "key": "identifies one document within its matter for reading its BLOB; file_name when absent",
    "group": "材料类别: 申报 / 过程 / 结果, or a value that group_values maps to one",
    "title": "材料名称",
    "file_name": "文件名 (its extension names the format)",
    "media_type": "media type as the source states it",
    "size": "bytes, as the source states them",
    "source_sha256": "SHA-256 the source vouches for (checked on arrival)",
    "source_sm3": "SM3 the source vouches for (checked on arrival)",
    "name": "环节名称",
    "actor": "办理人",
    "department": "办理部门",
    "opinion": "办理意见",
    "started_at": "开始时间",
    "ended_at": "结束时间",
}


def json_schema() -> dict[str, Any]:
    schema = Settings.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "title": "guidang.yaml", **{k: v for k, v in schema.items() if k != "title"}}


def _ref(ref: str) -> str:
    name = ref.rsplit("/", 1)[-1]
    return f"[{name}](#{name.lower()})"


def _type(s: dict[str, Any]) -> str:
    if "$ref" in s:
        return _ref(s["$ref"])
    if "const" in s:
        return f"`{json.dumps(s['const'], ensure_ascii=False)}`"
    if "enum" in s:
        return " | ".join(f"`{json.dumps(v, ensure_ascii=False)}`" for v in s["enum"])
    for key in ("oneOf", "anyOf"):
        if key in s:
            parts = [_type(x) for x in s[key]]
            by = f" (by `{s['discriminator']['propertyName']}`)" if "discriminator" in s else ""
            return " or ".join(parts) + by
    t = s.get("type")
    if t == "array":
        return f"list of {_type(s.get('items', {}))}"
    if t == "object":
        return f"mapping of string → {_type(s.get('additionalProperties', {}))}"
    if t == "null":
        return "null"
    if s.get("format") == "date-time":
        return "date-time"
    bounds = [f"{op} {s[k]}" for k, op in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"),
                                             ("minItems", "items ≥")) if k in s]
    pattern = f" matching `{s['pattern']}`" if "pattern" in s else ""
    return f"{t or 'any'}{' (' + ', '.join(bounds) + ')' if bounds else ''}{pattern}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default(prop: dict[str, Any], required: bool) -> str:
    if required:
        return "—"
    if "default" not in prop:  # a default factory
        kind = prop.get("type")
        return {"array": "`[]`", "object": "`{}`"}.get(kind or "", "the defaults of its keys")
    return f"`{json.dumps(prop['default'], ensure_ascii=False)}`"


def _table(schema: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", []))
    rows = ["| key | type | default | required | meaning |", "|---|---|---|---|---|"]
    for name, prop in schema.get("properties", {}).items():
        rows.append(f"| `{name}` | {_cell(_type(prop))} | {_cell(_default(prop, name in required))} | "
                    f"{'yes' if name in required else 'no'} | {_cell(prop.get('description', ''))} |")
    return rows


def _keys(title: str, intro: str, fields: tuple[str, ...], required: dict[str, str]) -> list[str]:
    missing = [f for f in fields if f not in FIELD_MEANINGS]
    if missing:
        raise SystemExit(f"FIELD_MEANINGS has no meaning for {missing}: add one")
    rows = [f"### {title}", "", intro, "", "| key | required | meaning |", "|---|---|---|"]
    rows += [f"| `{f}` | {required.get(f, 'no')} | {_cell(FIELD_MEANINGS[f])} |" for f in fields]
    return [*rows, ""]


def markdown() -> str:
    schema = json_schema()
    out = [
        "# guidang.yaml: configuration reference",
        "",
        "Generated by `python scripts/config_reference.py` from the config model (`schemas/config.py`) and the",
        "sql key lists (`connectors/sources/sql_queries.py`); do not edit by hand. The same model as a JSON",
        "Schema, for completion in editors, is `schemas/guidang.schema.json`. Check a configuration and its",
        "sources' queries without running a night with `guidang config check [F]`.",
        "",
        "Values may say `${NAME}` or `${NAME:-default}` to take them from the environment (secrets live there).",
        "Relative paths are relative to the folder of guidang.yaml. Unknown keys are an error.",
        "",
        "## guidang.yaml (top level)",
        "",
        *_table(schema),
        "",
    ]
    for name, definition in schema.get("$defs", {}).items():
        out += [f"## {name}", ""]
        if definition.get("description"):
            out += [" ".join(definition["description"].split()), ""]
        out += [*_table(definition), ""]
    matter_required = {f: "yes (a column or a constant)" for f in REQUIRED_MATTER_FIELDS}
    matter_required |= {f: "yes (a column)" for f in COLUMN_ONLY_FIELDS}
    out += ["## The keys of a sql source's mappings", ""]
    out += _keys("Keys of columns", "`columns` maps these fields to `matters_query` result columns (matched exactly, "
                 "else case-insensitively); `constants` may give the same fields fixed values.",
                 MATTER_FIELDS, matter_required)
    out += _keys("Keys of document_columns", "`document_columns` maps these fields to `documents_query` result "
                 "columns; the bytes come from `content.column`.",
                 DOCUMENT_FIELDS, dict.fromkeys(REQUIRED_DOCUMENT_FIELDS, "yes"))
    out += _keys("Keys of step_columns", "`step_columns` maps these fields to `steps_query` result columns.",
                 STEP_FIELDS, {"name": "yes, when steps_query is set"})
    return "\n".join(out).rstrip() + "\n"


def rendered() -> dict[Path, str]:
    return {JSON_SCHEMA: json.dumps(json_schema(), ensure_ascii=False, indent=2) + "\n", MARKDOWN: markdown()}


def main(argv: list[str]) -> int:
    stale = []
    for path, text in rendered().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path.relative_to(ROOT).as_posix())
        if "--check" not in argv:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if "--check" in argv and stale:
        print(f"out of date: {', '.join(stale)}; run python scripts/config_reference.py", file=sys.stderr)
        return 1
    for name in stale:
        print(f"wrote {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
