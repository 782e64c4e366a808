"""The command line as integrators and operators meet it: bad input is one line and a non-zero exit."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import version

import pytest
import typer

from clinic.cli.main import app, main
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
    code, _out, err = run(capsys, *args)
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


def command_paths(command=None, path=()) -> list[tuple[str, ...]]:
    command = command or typer.main.get_command(app)
    found = []
    for name, sub in getattr(command, "commands", {}).items():
        found += command_paths(sub, (*path, name)) if getattr(sub, "commands", None) else [(*path, name)]
    return found


COMMANDS = command_paths()
READ_COMMANDS = [
    ("events",), ("publish",), ("tail",), ("lag",), ("monitor",), ("stock", "levels"), ("stock", "forecast"), ("dlq", "list"), ("dlq", "replay"), ("outbox", "list"), ("infra", "status"), ("acl", "list"),
    ("export", "fhir"),
]


def option_names(path: tuple[str, ...]) -> set[str]:
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def test_every_command_is_known_to_these_tests():
    assert len(COMMANDS) == 20 and ("export", "fhir") in COMMANDS and ("stock", "forecast") in COMMANDS and ("dlq", "replay") in COMMANDS and ("infra", "status") in COMMANDS and ("acl", "apply") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_refuses_an_unknown_flag_in_one_line(capsys, path):
    code, out, err = run(capsys, *path, "--no-such-flag")
    assert code == 2 and out == ""
    assert err.strip() == f"clinic {' '.join(path)}: No such option: --no-such-flag (see 'clinic {' '.join(path)} --help')"


@pytest.mark.parametrize(
    "args",
    [("tail", "session-finished"), ("tail", "clinic.session.finished.v1"), ("dlq", "list", "nosuch"), ("dlq", "replay", "nosuch.dlq"),
     ("publish", "clinic.session.finished.v1", "-")],
    ids=" ".join,
)
def test_an_unknown_topic_is_refused_in_one_line_before_anything_connects(capsys, args):
    code, _, err = run(capsys, *args, "--bootstrap-server", "127.0.0.1:1")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "unknown" in err and "clinic events" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("tail", "session-completed", "--offset", "5"), "give --partition too"),
        (("tail", "session-completed", "--partition", "0", "--offset", "soon"), "'soon' is not an offset"),
        (("tail", "session-completed", "--partition", "0", "--offset", "3", "--from-beginning"), "not both"),
        (("tail", "--max-messages", "0"), "--max-messages"),
        (("dlq", "replay", "session-completed", "--from-offset", "9", "--to-offset", "2"), "--from-offset 9 is after --to-offset 2"),
        (("outbox", "list", "pharmacy"), "unknown service 'pharmacy'"),
    ],
)
def test_contradicting_or_impossible_options_are_refused_in_one_line(capsys, args, message):
    code, _, err = run(capsys, *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_kafkas_flag_names_are_accepted_and_the_old_ones_kept_as_aliases():
    assert {"--bootstrap-server", "--bootstrap", "--max-messages", "--max", "--from-beginning", "--partition", "--offset", "--exit-at-end"} <= option_names(("tail",))
    for path in [("lag",), ("monitor",), ("publish",), ("dlq", "list"), ("dlq", "replay"), ("outbox", "redrive"), ("acl", "apply")]:
        assert {"--bootstrap-server", "--bootstrap"} <= option_names(path), path


@pytest.mark.parametrize("path", READ_COMMANDS, ids=" ".join)
def test_every_read_command_has_json_output(path):
    assert "--json" in option_names(path)


@pytest.mark.parametrize(("args", "message"), [
    (("--weeks", "0"), "Invalid value for '--weeks'"),
    (("--weeks", "27"), "Invalid value for '--weeks'"),
    (("--ingredient", "Not A Code"), "Invalid value for --ingredient: 'Not A Code' is not an ingredient code"),
])
def test_a_stock_forecast_with_bad_arguments_is_one_line_and_exit_status_2_before_anything_is_sent(capsys, args, message):
    code, out, err = run(capsys, "stock", "forecast", *args, "--bootstrap-server", "127.0.0.1:1")
    assert code == 2 and out == ""
    assert err.startswith(f"clinic stock forecast: {message}") and len(err.strip().splitlines()) == 1


def test_clinic_stock_without_a_subcommand_is_still_the_stock_levels(capsys):
    code, out, err = run(capsys, "stock", "biotin", "--no-such-flag")
    assert code == 2 and out == "" and err.strip() == "clinic stock levels: No such option: --no-such-flag (see 'clinic stock levels --help')"
    _, help_text, _ = run(capsys, "stock", "--help")
    assert "levels" in help_text and "forecast" in help_text


def test_version_is_printed(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"clinic {version('clinic-backbone')}"


@pytest.mark.parametrize("args", [(), ("dlq",), ("infra",), ("outbox",), ("acl",), ("export",)])
def test_a_bare_command_group_shows_its_help_without_an_empty_error_line(capsys, args):
    code, out, err = run(capsys, *args)
    assert code == 2
    assert "Usage: clinic" in out + err and "Commands:" in out + err
    assert not re.search(r"^clinic.*:\s+\(see", out + err, re.M)


def test_help_renders_defaults_and_the_exit_codes(capsys):
    _, monitor, _ = run(capsys, "monitor", "--help")
    assert "[default: 2.0;" in monitor and "$KAFKA_BOOTSTRAP_SERVERS" in monitor
    _, infra_up, _ = run(capsys, "infra", "up", "--help")
    assert "[default: (9092" in infra_up and "[default: (27017" in infra_up
    _, lag, _ = run(capsys, "lag", "--help")
    assert "1 a group's lag is above it; 3" in " ".join(lag.split()) and "Kafka did not answer" in lag
    _, tail, _ = run(capsys, "tail", "--help")
    assert "3 Kafka or the store did not answer" in " ".join(tail.split())


def test_shell_completion_is_offered(capsys, monkeypatch):
    # typer finds the user's shell by walking up the process tree (sh under make); this variable, read when
    # typer is imported, lets the shell be named instead, so the process of its own
    env = {**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    shown = subprocess.run([sys.executable, "-m", "clinic.cli.main", "--show-completion", "bash"], capture_output=True, text=True, timeout=60, env=env)
    assert shown.returncode == 0 and "_CLINIC_COMPLETE" in shown.stdout, shown.stderr
    monkeypatch.setenv("_CLINIC_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "clinic tail --bootstrap-s")
    monkeypatch.setenv("COMP_CWORD", "2")
    code, out, _ = run(capsys)
    assert code == 0 and out.split() == ["--bootstrap-server"]


def test_events_and_infra_status_speak_json(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("CLINIC_STATE_DIR", str(tmp_path))  # not the pid files of infrastructure running here
    code, out, _ = run(capsys, "events", "--json", "--producer", "inventory")
    listed = json.loads(out)
    assert code == 0 and {e["name"] for e in listed} == {m.event_name() for m in REGISTRY.produced_by("inventory")}
    assert all(e["topic"] == e["type"] and e["schema"] == f"schemas/{e['type']}.json" for e in listed)
    code, out, _ = run(capsys, "infra", "status", "--kafka-port", "1", "--mongo-port", "2", "--json")
    assert code == 1 and json.loads(out) == {"kafka": {"running": False, "status": "stopped"}, "ferretdb": {"running": False, "status": "stopped"}}


def test_a_long_first_run_step_reports_its_elapsed_time(monkeypatch):
    from infra import local

    monkeypatch.setattr(local, "PROGRESS_SECONDS", 0.1)
    said: list[str] = []
    assert local._run(["sh", "-c", "sleep 0.45; echo done"], "never", progress=local._ticker(said.append, "building")) == "done\n"
    assert len(said) >= 3 and said[0] == "  ... building (0s so far)" and all("so far" in line for line in said)


def test_incomplete_kafka_security_settings_are_one_line_naming_the_missing_one(capsys, monkeypatch):
    monkeypatch.setenv("CLINIC_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("CLINIC_KAFKA_PASSWORD", "never-shown-7e1d")
    code, out, err = run(capsys, "lag")
    assert code == 2
    assert err.strip() == "clinic: invalid settings: CLINIC_KAFKA_USERNAME is required with CLINIC_KAFKA_SECURITY_PROTOCOL=SASL_SSL"
    assert "never-shown-7e1d" not in out + err
