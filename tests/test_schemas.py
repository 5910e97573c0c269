"""Message types, the topic catalog, and the documents generated from it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
from pydantic import TypeAdapter, ValidationError

from edge.acl import render_acl
from edge.cli import main as cli_main
from schemas import spec
from schemas.catalog import CATALOG
from schemas.common import Currency, Money, Symbol, UtcDateTime
from schemas.topics import Catalog, Topics, command, event, state
from tests.conftest import FULL_CATALOG
from tests.nodes.catalog import Add, Total

ASYNCAPI_SCHEMA = Path(__file__).parent / "data" / "asyncapi-3.0.0.schema.json"


@pytest.mark.parametrize("symbol", ["AAPL.US", "BRK.B.US", "SAP.EU", "0700.HK", "SBER.RU"])
def test_symbol_accepts_tradernet_tickers(symbol):
    assert TypeAdapter(Symbol).validate_python(symbol) == symbol


@pytest.mark.parametrize("symbol", ["AAPL", "aapl.us", "AAPL.", ".US", "AA PL.US", "AAPL.US.", "", "A" * 40 + ".US"])
def test_symbol_refuses_others(symbol):
    with pytest.raises(ValidationError):
        TypeAdapter(Symbol).validate_python(symbol)


def test_currency_is_three_capitals():
    assert TypeAdapter(Currency).validate_python("EUR") == "EUR"
    for bad in ("eur", "EU", "EURO", "€"):
        with pytest.raises(ValidationError):
            TypeAdapter(Currency).validate_python(bad)


def test_money_is_exact_and_travels_as_a_string():
    ta = TypeAdapter(Money)
    assert ta.validate_json('"0.10"') + ta.validate_json('"0.20"') == Decimal("0.30")
    assert ta.dump_json(Decimal("1250.00")) == b'"1250.00"'
    assert ta.dump_json(Decimal("1E+3")) == b'"1000"'
    assert ta.validate_json("12") == Decimal(12)  # an integer is exact


@pytest.mark.parametrize("raw", ["0.1", "1e5", "true", '"NaN"', '"Infinity"', '"ten"'])
def test_money_refuses_floats_and_non_numbers(raw):
    with pytest.raises(ValidationError):
        TypeAdapter(Money).validate_json(raw)


def test_times_are_aware_and_utc():
    ta = TypeAdapter(UtcDateTime)
    t = ta.validate_python(datetime(2026, 1, 2, 3, 4, tzinfo=timezone(timedelta(hours=2))))
    assert t.tzinfo == UTC and t.hour == 1
    with pytest.raises(ValidationError):
        ta.validate_python(datetime(2026, 1, 2, 3, 4))  # naive


def test_messages_refuse_unknown_fields_and_are_immutable():
    with pytest.raises(ValidationError):
        Add.model_validate({"amount": "1", "amout": "2"})
    a = Add(amount=Decimal(1))
    with pytest.raises(ValidationError):
        a.amount = Decimal(2)  # type: ignore[misc]


def test_topics_are_built_in_one_place():
    t = Topics("trader")
    assert t.status("universe") == "trader/node/universe/status"
    assert t.command("trading", "place") == "trader/cmd/trading/place"
    assert t.reply("trading", "place") == "trader/reply/trading/place"
    assert t.parse_command("trader/cmd/trading/place") == ("trading", "place")
    assert t.parse_command("trader/evt/trading/placed") is None
    assert Topics("site/a").error("x") == "site/a/error/x"
    for bad in ("Trading", "a/b", "", "a+b", "#"):
        with pytest.raises(ValueError):
            t.command(bad, "x")
    with pytest.raises(ValueError):
        Topics("trader/#")


def test_no_module_outside_schemas_formats_a_topic_string():
    """The topic catalog is the only formatter of topic strings."""
    root = Path(__file__).resolve().parents[1]
    offenders = []
    for folder in ("edge", "nodes", "dashboard"):
        for path in (root / folder).rglob("*.py"):
            text = path.read_text()
            for needle in ('f"{root}/', "/cmd/{", "/evt/{", "/state/{", "/node/{", 'f"$share', "root}/", '/#"'):
                if needle in text:
                    offenders.append(f"{path.relative_to(root)}: {needle}")
    assert offenders == []


def test_catalog_checks_itself():
    entry = command("a", "go", Add, Total)
    with pytest.raises(ValueError, match="twice"):
        Catalog(entries=(entry, entry))
    cat = Catalog(entries=(entry, event("a", "went", Total), state("b", "level", Total)))
    assert cat.nodes == {"a", "b"}
    assert [c.verb for c in cat.commands("a")] == ["go"]


def test_acl_is_generated_from_the_catalog():
    acl = render_acl(FULL_CATALOG, Topics("trader"))
    counter = acl.split("user counter\n", 1)[1].split("\n\n", 1)[0]
    assert "topic write trader/state/counter/total" in counter
    assert "topic write trader/node/counter/#" in counter
    assert "topic write trader/state/echo" not in counter
    operator = acl.split("user operator\n", 1)[1].split("\n\n", 1)[0]
    assert "topic deny trader/cmd/counter/private" in operator
    assert "topic write trader/cmd/#" in operator
    probe = acl.split("user probe\n", 1)[1].split("\n\n", 1)[0]
    assert "deny trader/cmd/counter/private" not in probe
    echo = acl.split("user echo\n", 1)[1].split("\n\n", 1)[0]
    assert "topic write trader/node/echo_4/#" in echo  # every instance of a worker pool


def test_json_schema_per_model(tmp_path):
    schemas = spec.json_schemas(FULL_CATALOG)
    assert {"NodeStatus", "Heartbeat", "ErrorReport", "ErrorReply", "Ping", "Pong", "Add", "Total"} <= set(schemas)
    validator = jsonschema.Draft202012Validator(schemas["Add"])
    validator.validate({"amount": "12.50"})
    assert list(validator.iter_errors({"amount": 12.5})), "the schema says money is a string"


def test_asyncapi_document_is_valid_asyncapi_3():
    doc = spec.asyncapi(FULL_CATALOG)
    official = json.loads(ASYNCAPI_SCHEMA.read_text())
    jsonschema.Draft7Validator(official).validate(doc)
    assert doc["channels"]["cmd.counter.add"]["address"] == "trader/cmd/counter/add"
    assert doc["operations"]["cmd.counter.add.handle"]["reply"]["channel"] == {"$ref": "#/channels/reply.counter.add"}
    assert doc["channels"]["node.node.status"]["parameters"]["node"]
    for op in doc["operations"].values():
        assert op["channel"]["$ref"].removeprefix("#/channels/") in doc["channels"]


def test_asyncapi_validator_catches_a_broken_document():
    """The check is real: a document with a wrong field fails it."""
    doc = spec.asyncapi(CATALOG)
    doc["operations"]["cmd.node.ping.handle"]["action"] = "publish"  # AsyncAPI 2 wording
    official = json.loads(ASYNCAPI_SCHEMA.read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(official).validate(doc)


def test_edge_schema_command_writes_both(tmp_path):
    with pytest.raises(SystemExit) as done:
        cli_main(["schema", "--jsonschema", str(tmp_path / "js"), "--asyncapi", str(tmp_path / "asyncapi.yaml")])
    assert done.value.code == 0
    assert (tmp_path / "js" / "NodeStatus.json").exists()
    import yaml

    doc = yaml.safe_load((tmp_path / "asyncapi.yaml").read_text())
    jsonschema.Draft7Validator(json.loads(ASYNCAPI_SCHEMA.read_text())).validate(doc)
