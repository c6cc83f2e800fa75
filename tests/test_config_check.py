"""The configuration reference cannot drift from the model, and `guidang config check` names the
source, key and column of what is wrong (exit 2) while still checking the other sources."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from flows.cli import app
from tests.world_support import simulator


def _generator() -> Any:
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "scripts" / "config_reference.py"
    spec = importlib.util.spec_from_file_location("config_reference", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_reference_and_json_schema_are_what_the_generator_writes_now() -> None:
    generator = _generator()
    for path, text in generator.rendered().items():
        assert path.exists(), f"{path.name} missing: run python scripts/config_reference.py"
        assert path.read_text(encoding="utf-8") == text, f"{path.name} is out of date: run scripts/config_reference.py"
    reference = generator.MARKDOWN.read_text(encoding="utf-8")
    from connectors.sources.sql_queries import DOCUMENT_FIELDS, MATTER_FIELDS, REQUIRED_MATTER_FIELDS, STEP_FIELDS

    for key in (*MATTER_FIELDS, *DOCUMENT_FIELDS, *STEP_FIELDS):
        assert f"| `{key}` |" in reference, key
    for key in REQUIRED_MATTER_FIELDS:
        assert re.search(rf"\| `{key}` \| yes", reference), key
    # every key of every model is documented with a meaning
    schema = generator.json_schema()
    for definition in [schema, *schema["$defs"].values()]:
        for name, prop in definition["properties"].items():
            assert prop.get("description"), name
            assert f"| `{name}` |" in reference, name


def _sql_config(world: Path, source: str, **changes: Any) -> Path:
    config = yaml.safe_load((world / "guidang.yaml").read_text(encoding="utf-8"))
    entry = next(s for s in config["sources"] if s["name"] == source)
    for dotted, value in changes.items():
        section, _, key = dotted.partition(".")
        if key:
            entry[section][key] = value
        else:
            entry[section] = value
    path = world / "guidang-test.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def test_config_check_passes_on_the_demo_world(small_world: Path) -> None:
    with simulator(small_world):
        result = CliRunner().invoke(app, ["config", "check", str(small_world / "guidang.yaml")])
    assert result.exit_code == 0, result.output
    for name in ("unified", "tzxm", "sjjc"):
        assert f"source {name} " in result.output


def test_config_check_names_a_misspelt_column_and_exits_2(small_world: Path) -> None:
    config = yaml.safe_load((small_world / "guidang.yaml").read_text(encoding="utf-8"))
    tzxm = next(s for s in config["sources"] if s["name"] == "tzxm")
    path = _sql_config(small_world, "tzxm", **{"columns.service_name": tzxm["columns"]["service_name"] + "_TYPO",
                                              "document_columns.title": "NO_SUCH_TITLE"})
    with simulator(small_world):
        result = CliRunner().invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if "tzxm" in line]
    assert any("columns" in line and tzxm["columns"]["service_name"] + "_TYPO" in line for line in lines), result.output
    assert any("document_columns" in line and "NO_SUCH_TITLE" in line for line in lines), result.output
    assert "source sjjc (sql): ok" in result.output  # the other sources are still checked


def test_config_check_names_a_query_that_does_not_prepare_or_misses_its_parameter(small_world: Path) -> None:
    config = yaml.safe_load((small_world / "guidang.yaml").read_text(encoding="utf-8"))
    sjjc = next(s for s in config["sources"] if s["name"] == "sjjc")
    path = _sql_config(small_world, "sjjc",
                       documents_query=sjjc["documents_query"].replace(":project_id", "'x'"),
                       steps_query="SELECT * FROM no_such_table WHERE x = :project_id")
    with simulator(small_world):
        result = CliRunner().invoke(app, ["config", "check", str(path), "--json"])
    assert result.exit_code == 2, result.output
    import json

    problems = json.loads(result.output)["sources"]["sjjc"]["problems"]
    wheres = {p["where"]: p["message"] for p in problems}
    assert ":project_id" in wheres["source sjjc: documents_query"]
    assert "no_such_table" in wheres["source sjjc: steps_query"]


def test_config_check_refuses_a_group_value_that_is_no_document_group(small_world: Path) -> None:
    path = _sql_config(small_world, "tzxm", group_values={"01": "申报", "02": "其他材料"})
    with simulator(small_world):
        result = CliRunner().invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 2, result.output
    assert "group_values" in result.output and "其他材料" in result.output, result.output
    assert "申报材料, 过程材料 or 结果材料" in result.output, result.output
