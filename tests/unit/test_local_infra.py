import socket
from pathlib import Path

import pytest

from infra import local


def layout(tmp_path: Path, **ports: int) -> local.Layout:
    return local.Layout(cache=tmp_path / "cache", state=tmp_path / "state", **ports)


def test_broker_config_is_single_node_kraft_on_loopback(tmp_path):
    config = local._server_properties(layout(tmp_path, kafka_port=19092, controller_port=19093), tmp_path / "data")
    lines = dict(line.split("=", 1) for line in config.splitlines() if line)
    assert lines["process.roles"] == "broker,controller"
    assert lines["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert lines["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert lines["offsets.topic.replication.factor"] == "1"
    assert lines["log.dirs"] == str(tmp_path / "data")


def test_a_taken_port_is_named_in_the_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(local.InfraError, match=f"127.0.0.1:{port} for FerretDB is already taken"):
            local._port_free("127.0.0.1", port, "FerretDB", "--mongo-port")


def test_endpoints_are_printed_as_environment_lines(tmp_path):
    lines = layout(tmp_path, kafka_port=29092, mongo_port=29017).env_lines().splitlines()
    assert lines == ["KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:29092", "MONGODB_URL=mongodb://127.0.0.1:29017/"]


def test_the_controller_port_follows_the_kafka_port_unless_given(tmp_path, monkeypatch):
    monkeypatch.delenv("CLINIC_CONTROLLER_PORT", raising=False)
    assert local.Layout.from_env(kafka_port=39092).controller_port == 39093
    assert local.Layout.from_env(kafka_port=39092, controller_port=40000).controller_port == 40000


def test_the_ferretdb_build_is_cached_by_the_wrapper_source(tmp_path):
    first = layout(tmp_path).ferretdb_binary
    assert first == layout(tmp_path).ferretdb_binary
    assert first.parent.name.startswith(f"ferretdb-{local.FERRETDB_VERSION}-")


def test_a_stopped_process_has_no_pid(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "kafka.pid").write_text("999999999")
    assert local._pid(layout(tmp_path), "kafka") is None


def test_the_ferretdb_build_is_cached_by_the_patch_too(tmp_path, monkeypatch):
    unpatched = layout(tmp_path).ferretdb_binary
    monkeypatch.setattr(local, "FERRETDB_ID_PATCH", (*local.FERRETDB_ID_PATCH[:2], "something else"))
    assert layout(tmp_path).ferretdb_binary != unpatched


def test_the_update_patch_closes_each_statements_query_once_it_is_done(tmp_path):
    relative, old, new = local.FERRETDB_UPDATE_PATCH
    source = tmp_path / relative
    source.parent.mkdir(parents=True)
    source.write_text(f"\tfor _, u := range params.Updates {{\n{old}\n\t\t}}\n")
    local._patch(tmp_path, relative, old, new)
    assert "closer.Close() // clinic-backbone" in source.read_text()
    assert layout(tmp_path).ferretdb_binary.parent.name.startswith("ferretdb-")


def test_the_id_patch_rewrites_the_filter_expression_once(tmp_path):
    relative, old, new = local.FERRETDB_ID_PATCH
    source = tmp_path / relative
    source.parent.mkdir(parents=True)
    source.write_text(f"const (\n\t{old}\n)\n")
    local._patch(tmp_path, relative, old, new)
    assert source.read_text() == f"const (\n\t{new}\n)\n"


def test_an_upstream_source_without_the_expected_text_fails_the_build_loudly(tmp_path):
    relative, old, new = local.FERRETDB_ID_PATCH
    (tmp_path / relative).parent.mkdir(parents=True)
    (tmp_path / relative).write_text("IDColumn = something new upstream\n")
    with pytest.raises(local.InfraError, match=r"cannot patch FerretDB .* found it 0 times"):
        local._patch(tmp_path, relative, old, new)


def test_a_read_only_copy_from_the_go_module_cache_can_be_removed(tmp_path):
    copy = tmp_path / "module" / "internal"
    copy.mkdir(parents=True)
    (copy / "file.go").write_text("package internal\n")
    (copy / "file.go").chmod(0o444)
    copy.chmod(0o555)
    local._remove(tmp_path / "module")
    assert not (tmp_path / "module").exists()


def test_the_local_ferretdb_collects_garbage_less_often_unless_the_caller_says_otherwise():
    assert local.ferretdb_env({"PATH": "/usr/bin"}) == {"PATH": "/usr/bin", "GOGC": local.FERRETDB_GOGC}
    assert local.ferretdb_env({"GOGC": "100"})["GOGC"] == "100"


def test_the_local_broker_compiles_with_c1_only_unless_the_caller_sets_kafkas_own_variables():
    default = local.kafka_jvm_options({"PATH": "/usr/bin"})
    assert default[:2] == ["-Xms256m", "-Xmx1g"]
    assert "-XX:TieredStopAtLevel=1" in default and "-XX:+UseG1GC" in default
    theirs = local.kafka_jvm_options({"KAFKA_JVM_PERFORMANCE_OPTS": "-XX:+UseZGC '-Dclinic.note=two words'"})
    assert theirs == ["-Xms256m", "-Xmx1g", "-XX:+UseZGC", "-Dclinic.note=two words"]
    assert local.kafka_jvm_options({"KAFKA_HEAP_OPTS": "-Xmx2g"})[0] == "-Xmx2g"
    assert local.kafka_jvm_options({"KAFKA_HEAP_OPTS": "", "KAFKA_JVM_PERFORMANCE_OPTS": ""}) == default  # empty: unset, as in Kafka's scripts
    assert "-XX:TieredStopAtLevel=1" in local.kafka_jvm_options({"KAFKA_HEAP_OPTS": "-Xmx2g"})
    with pytest.raises(local.InfraError, match="KAFKA_JVM_PERFORMANCE_OPTS cannot be split into JVM options: No closing quotation"):
        local.kafka_jvm_options({"KAFKA_JVM_PERFORMANCE_OPTS": "-XX:+UseZGC '-Dnote=open"})


def test_every_ferretdb_patch_in_the_module_is_applied_and_named_when_it_no_longer_fits(tmp_path):
    defined = {
        name for name, value in vars(local).items()
        if name.startswith("FERRETDB_") and isinstance(value, tuple) and len(value) == 3 and all(isinstance(part, str) for part in value)
    }
    applied = set(local._patches())
    assert {name for name in defined if getattr(local, name) not in applied} == set()
    relative, old, new = local.FERRETDB_UPDATE_BATCH
    (tmp_path / relative).parent.mkdir(parents=True)
    (tmp_path / relative).write_text("func UpdateDocument() {}\n")
    with pytest.raises(local.InfraError, match=r"the comment of FERRETDB_UPDATE_BATCH\* in infra/local.py"):
        local._patch(tmp_path, relative, old, new, name="FERRETDB_UPDATE_BATCH*")
