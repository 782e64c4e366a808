"""An integrator publishes with the CLI; an operator tails the topic and reads the stock it made.
Against endpoints that do not answer, every command says so in one line with exit status 3."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from clinic.polling import eventually
from services.inventory.app import create_service
from shared.contracts import REGISTRY, examples
from tests.support.cli import clinic

STOCK_RECEIVED = REGISTRY.by_name("stock-received")
UNREACHABLE_KAFKA = "127.0.0.1:1"
UNREACHABLE_STORE = "mongodb://127.0.0.1:1/"


async def test_a_published_delivery_is_tailed_decoded_and_shows_up_in_stock(settings, bus, run_id):
    lot = f"CLI-{run_id.upper()}"
    data = dict(examples(STOCK_RECEIVED)[0], lot_number=lot, expires_on=(datetime.now(UTC) + timedelta(days=200)).date().isoformat(), quantity=750.0)

    code, out, err = await clinic(settings, "publish", "stock-received", "-", "--source", "/clinic/supplier", stdin=json.dumps(data).encode())
    assert code == 0, err
    event_id = out.split("id=")[1].split()[0]

    code, out, _ = await clinic(settings, "tail", "stock-received", "--from-beginning", "--max", "1", "--json")
    tailed = json.loads(out)
    assert code == 0 and tailed["id"] == event_id and tailed["data"]["lot_number"] == lot and tailed["source"] == "/clinic/supplier"

    async with create_service(settings):
        async def in_stock():
            code, out, _ = await clinic(settings, "stock", "--json")
            lots = json.loads(out)["lots"] if code == 0 else []
            return [entry for entry in lots if entry["lot_number"] == lot]

        [entry] = await eventually(in_stock, what="the delivered lot in stock")
    assert entry["available"] == 750.0 and entry["status"] == "available" and entry["ingredient"] == data["ingredient"]


async def test_tail_reads_one_partition_from_an_offset_and_exits_at_its_end(settings, run_id):
    data = json.dumps(dict(examples(STOCK_RECEIVED)[0], lot_number=f"PART-{run_id.upper()}")).encode()
    published = []
    for _ in range(3):  # one key, so one partition
        code, out, err = await clinic(settings, "publish", "stock-received", "-", "--json", stdin=data)
        assert code == 0, err
        published.append(json.loads(out))
    partition, second = published[0]["partition"], published[1]["offset"]
    assert {p["partition"] for p in published} == {partition}

    code, out, err = await clinic(settings, "tail", "stock-received", "--partition", str(partition), "--offset", str(second), "--exit-at-end", "--json")
    assert code == 0, err
    assert [json.loads(line)["id"] for line in out.splitlines()] == [p["id"] for p in published[1:]]

    code, out, _ = await clinic(settings, "tail", "stock-received", "--from-beginning", "--exit-at-end", "--max-messages", "2")
    assert code == 0 and len(out.splitlines()) == 2

    code, out, _ = await clinic(settings, "monitor", "--once", "--json")
    snapshot = json.loads(out)
    assert code == 0 and snapshot["topics"][f"{settings.topic_prefix}{STOCK_RECEIVED.event_type}"]["events"] == 3
    assert {e["id"] for e in snapshot["last_events"]} >= {published[-1]["id"]}


async def test_a_topic_or_partition_the_broker_does_not_have_is_one_line(settings):
    code, _, err = await clinic(settings, "tail", "session-completed", "--exit-at-end")
    assert code == 1 and "does not exist (nothing was ever published to it)" in err and len(err.strip().splitlines()) == 1
    await clinic(settings, "publish", "stock-received", "-", stdin=json.dumps(examples(STOCK_RECEIVED)[0]).encode())
    code, _, err = await clinic(settings, "tail", "stock-received", "--partition", "99")
    assert code == 1 and "has no partition 99" in err and len(err.strip().splitlines()) == 1
    code, _, err = await clinic(settings, "lag", "--group", "clinic.nobody")
    assert code == 2 and "no consumer group 'clinic.nobody'" in err


KAFKA_COMMANDS = [
    ("publish", "stock-received", "-"),
    ("tail", "stock-received"),
    ("lag",),
    ("monitor", "--once"),
    ("dlq", "list"),
    ("dlq", "replay", "stock-received"),
    ("export", "fhir", "pt_7Q2M9K4X"),
    ("stock", "forecast", "--timeout", "5"),
]
STORE_COMMANDS = [("stock",), ("outbox", "list", "inventory"), ("outbox", "redrive", "inventory")]


@pytest.mark.parametrize("args", KAFKA_COMMANDS + STORE_COMMANDS, ids=" ".join)
async def test_an_unreachable_endpoint_is_one_line_and_exit_status_3(settings, args):
    settings = settings.model_copy(update={"kafka_bootstrap_servers": UNREACHABLE_KAFKA, "mongodb_url": SecretStr(UNREACHABLE_STORE)})
    code, _out, err = await clinic(settings, *args, stdin=json.dumps(examples(STOCK_RECEIVED)[0]).encode())
    assert code == 3, err
    what = "Kafka at 127.0.0.1:1" if args in KAFKA_COMMANDS else "the store at mongodb://127.0.0.1:1/"
    assert err.strip() == err.strip().splitlines()[0] and what in err and "did not answer" in err
    assert "Unclosed" not in err and "Traceback" not in err


async def test_a_stock_forecast_is_asked_of_inventory_through_the_bus_and_an_unknown_ingredient_is_one_line(settings, bus, run_id):
    today = datetime.now(UTC).date()
    lot = f"FC-{run_id.upper()}"
    data = dict(examples(STOCK_RECEIVED)[0], ingredient="biotin", unit="mg", lot_number=lot, expires_on=(today + timedelta(days=200)).isoformat(), quantity=4.0)
    await clinic(settings, "publish", "stock-received", "-", stdin=json.dumps(data).encode())
    session = dict(examples(REGISTRY.by_name("session-scheduled"))[0], scheduled_for=(datetime.now(UTC) + timedelta(days=9)).isoformat(),
                   cocktail=[{"ingredient": "biotin", "amount": 5.0, "unit": "mg"}])
    async with create_service(settings):
        code, _, err = await clinic(settings, "publish", "session-scheduled", "-", stdin=json.dumps(session).encode())
        assert code == 0, err

        async def short():  # the booking is known to inventory (left short: 4 mg for 5)
            code, out, _ = await clinic(settings, "stock", "forecast", "-i", "biotin", "--weeks", "3", "--json")
            assert code == 0
            [answer] = json.loads(out)
            return answer if answer["shortage"] else None

        answer = await eventually(short, what="the booking in the forecast")
        code, table, err = await clinic(settings, "stock", "forecast", "--ingredient", "biotin", "--weeks", "3")
        unknown = await clinic(settings, "stock", "forecast", "--ingredient", "unobtainium", "--timeout", "20")

    assert answer["ingredient"] == "biotin" and answer["usable_now"] == 4 and len(answer["weeks"]) == 3 and answer["shortage"]["missing"] == 1
    assert code == 0, err
    assert "biotin (mg): usable now 4" in table and "SHORT 1" in table and f"reorder by {answer['shortage']['reorder_by']}" in table
    code, out, err = unknown
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("clinic stock forecast: inventory refused the request (unknown-ingredient): unobtainium is not stocked") and "Traceback" not in err
