"""An integrator publishes with the CLI; an operator tails the topic and reads the stock it made."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from services.inventory.app import create_service
from shared.contracts import REGISTRY, examples
from shared.polling import eventually
from tests.support.cli import clinic

STOCK_RECEIVED = REGISTRY.by_name("stock-received")


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


async def test_publishing_to_an_unreachable_broker_says_so_in_one_line(settings):
    unreachable = settings.model_copy(update={"kafka_bootstrap_servers": "127.0.0.1:1"})
    code, _, err = await clinic(unreachable, "publish", "stock-received", "-", stdin=json.dumps(examples(STOCK_RECEIVED)[0]).encode())
    assert code == 1
    assert "did not take the event" in err and "Traceback" not in err
