"""The command line as integrators and operators meet it: bad input is one line and a non-zero exit."""

from __future__ import annotations

import json

import pytest

from shared.cli.main import main
from shared.contracts import REGISTRY, examples


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_events_lists_every_contract_with_its_topic_and_schema(capsys):
    code, out, _ = run(capsys, "events")
    assert code == 0
    assert len(out.splitlines()) == len(REGISTRY)
    assert "session-completed  " in out and "clinic.session.completed.v1" in out and "schemas/clinic.session.completed.v1.json" in out


def test_publish_dry_run_shows_the_cloudevent_it_would_send(capsys, tmp_path):
    data = tmp_path / "completed.json"
    data.write_text(json.dumps(examples(REGISTRY.by_name("session-completed"))[0]))
    code, out, _ = run(capsys, "publish", "session-completed", str(data), "--dry-run", "--source", "/clinic/treatment-room")
    document = json.loads(out)
    assert code == 0
    assert document["topic"] == "clinic.session.completed.v1"
    assert document["key"] == "pt_7Q2M9K4X"
    assert document["headers"]["ce_source"] == "/clinic/treatment-room"
    assert document["headers"]["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("publish", "session-finished", "x.json"), "unknown event 'session-finished'"),
        (("publish", "session-completed", "/nonexistent/x.json"), "cannot read /nonexistent/x.json"),
        (("events", "--producer", "pharmacy"), "no events are produced by 'pharmacy'"),
        (("lag", "--threshold", "-1"), "--threshold"),
        (("infra", "up", "--kafka-port", "http"), "--kafka-port"),
        (("frobnicate",), "No such command 'frobnicate'"),
    ],
)
def test_a_bad_argument_gets_one_line_and_a_non_zero_exit(capsys, args, message):
    code, out, err = run(capsys, *args)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_invalid_event_data_is_refused_before_anything_is_sent(capsys, tmp_path):
    data = dict(examples(REGISTRY.by_name("side-effect-reported"))[0], grade=7)
    path = tmp_path / "report.json"
    path.write_text(json.dumps(data))
    code, _, err = run(capsys, "publish", "side-effect-reported", str(path))
    assert code == 2
    assert "SideEffectReported is invalid at grade" in err
    assert len(err.strip().splitlines()) == 1


def test_malformed_json_is_refused_with_its_position(capsys, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    code, _, err = run(capsys, "publish", "stock-received", str(path))
    assert code == 2 and "StockReceived is invalid" in err
