"""Local infrastructure without Docker: Apache Kafka (single-node KRaft) and FerretDB (SQLite backend).

Kafka comes from its Maven Central artifact, fetched by Maven into a cache outside the repository;
FerretDB v1 is built with Go from our small wrapper module (infra/ferretdb). Both run as background
processes on loopback, with their data, logs and pid files under the state folder (``.local/``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shared.versions import KAFKA_VERSION

ROOT = Path(__file__).resolve().parent.parent
FERRETDB_VERSION = "1.24.0"
FERRETDB_MODULE = "github.com/FerretDB/FerretDB"
WRAPPER_FILES = ("go.mod", "go.sum", "main.go")
PROGRESS_SECONDS = 5.0

# FerretDB v1's SQLite backend creates the unique `_id` index on `_ferretdb_sjson->"_id"` but filters on
# `_ferretdb_sjson->'$._id'` (same value, different text), so SQLite never uses the index and every
# `{_id: x}` find, update and delete scans the whole table. The build spells the filter like the index.
FERRETDB_ID_PATCH = (
    "internal/backends/sqlite/metadata/metadata.go",
    """IDColumn = DefaultColumn + "->'$._id'""",
    """IDColumn = DefaultColumn + "->'_id'""",
)

# FerretDB v1's `update` command closes each statement's query (an open SQLite read, holding one of the
# database's 100 pooled connections) with a `defer` inside its loop over the statements, so only when the
# whole command returns. An `update` with more than 100 statements (a consumer's batch of inbox updates
# after a backlog: CLINIC_CONSUME_BATCH_SIZE is 200) then waits forever for a 101st connection, and with it
# every command that waits on the metadata lock (a service's start-up index creation takes it), even `ping`:
# the whole store hangs. Found by the chaos run (bench/chaos.py). The build closes each statement's query as
# soon as that statement is done (the deferred close then finds it closed).
FERRETDB_UPDATE_PATCH = (
    "internal/handler/msg_update.go",
    """		result, err := common.UpdateDocument(ctx, c, "update", iter, &u)
		if err != nil {""",
    """		result, err := common.UpdateDocument(ctx, c, "update", iter, &u)
		closer.Close() // clinic-backbone: release this statement's connection now, not at the end of the command
		if err != nil {""",
)

# FerretDB v1's upsert queries for the document and, finding none, inserts it: two writers upserting one new
# `_id` at once both find none, and the second insert fails with a duplicate `_id`. FerretDB then answers the
# whole `update` command with a write error and no `nModified`, which PyMongo's bulk API reads as a KeyError
# (a failed event, not a retry), and the command's later statements are not run. MongoDB retries such an
# upsert itself (an equality on `_id`): the document is there now, so the statement updates it. Found by the
# chaos run (two scheduling instances noting the same calendar hour). The build runs the statement once more
# in that case, as MongoDB does.
FERRETDB_UPSERT_PATCH = (
    "internal/handler/msg_update.go",
    """		closer.Close() // clinic-backbone: release this statement's connection now, not at the end of the command
		if err != nil {""",
    """		closer.Close() // clinic-backbone: release this statement's connection now, not at the end of the command
		if err != nil && u.Upsert && clinicDuplicateID(err) {
			// clinic-backbone: another writer inserted the document after this statement looked for it
			result, err = clinicUpdateAgain(ctx, c, &qp, &u)
		}
		if err != nil {""",
)
FERRETDB_UPSERT_AGAIN = (
    "internal/handler/msg_update.go",
    """// updateDocument iterate through all documents in collection and update them.""",
    """// clinicUpdateAgain (a clinic-backbone build patch) runs an update statement once more: its query, then the
// update of what it finds.
func clinicUpdateAgain(ctx context.Context, c backends.Collection, qp *backends.QueryParams, u *common.Update) (*common.UpdateResult, error) {
	res, err := c.Query(ctx, qp)
	if err != nil {
		return nil, lazyerrors.Error(err)
	}

	closer := iterator.NewMultiCloser()
	defer closer.Close()

	closer.Add(res.Iter)

	iter := common.FilterIterator(res.Iter, closer, u.Filter)

	if !u.Multi {
		iter = common.LimitIterator(iter, closer, 1)
	}

	return common.UpdateDocument(ctx, c, "update", iter, u)
}

// clinicDuplicateID (a clinic-backbone build patch) says whether err, or an error it wraps, is the backend's
// duplicate `_id` on insert.
func clinicDuplicateID(err error) bool {
	for err != nil {
		if backends.ErrorCodeIs(err, backends.ErrorCodeInsertDuplicateID) {
			return true
		}

		wrapped, ok := err.(interface{ Unwrap() error }) //nolint:errorlint // ErrorCodeIs looks at one error, not its chain
		if !ok {
			return false
		}

		err = wrapped.Unwrap()
	}

	return false
}

// updateDocument iterate through all documents in collection and update them.""",
)


# FerretDB v1 tracks the lifetime of every transaction, iterator and cursor it creates, to catch one that
# is never closed: each is added to a runtime/pprof profile (which records the call stack) and given a
# finalizer that panics. That is a test aid, and in the journey benchmark it cost a twentieth of FerretDB's
# CPU. The build skips it unless FerretDB is built for debugging (its `ferretdb_debug` build tag, which ours
# does not set); Untrack must skip too, as it panics on an object that was never tracked.
FERRETDB_TRACK_PATCH = (
    "internal/util/resource/resource.go",
    """func Track(obj any, token *Token) {
	checkArgs(obj, token)
""",
    """func Track(obj any, token *Token) {
	checkArgs(obj, token)

	if !debugbuild.Enabled {
		return // clinic-backbone: lifetime tracking is a test aid; skipped outside debug builds
	}
""",
)
FERRETDB_UNTRACK_PATCH = (
    "internal/util/resource/resource.go",
    """func Untrack(obj any, token *Token) {
	checkArgs(obj, token)
""",
    """func Untrack(obj any, token *Token) {
	checkArgs(obj, token)

	if !debugbuild.Enabled {
		return // clinic-backbone: nothing was tracked (see Track)
	}
""",
)


# FerretDB v1's SQLite backend hands SQLite a filter on `_id` only when the filter is exactly
# `{_id: <string or ObjectId>}`. Every other filter is matched in memory after a scan of the whole table,
# so `{_id: {$in: [a, b, c]}}` (reading several documents in one round trip) and `{_id: x, v: n}` (an
# update that applies only if the document is still at version n) cost as much as the collection is large.
# The handler matches every document that comes back against the whole filter again (find, count,
# distinct, update, delete, findAndModify, aggregate), so the build hands SQLite the top-level `_id`
# condition of any filter: equality to a string or ObjectId, or `$in` a list of them. MongoDB serves both
# from its `_id` index.
FERRETDB_ID_FILTER = (
    "internal/backends/sqlite/collection.go",
    """// Explain implements backends.Collection interface.""",
    """// clinicIDFilter (a clinic-backbone build patch) is the SQL condition for the top-level `_id` of a filter
// with any other fields: equality to a string or ObjectID, or `$in` a non-empty list of them. The caller's
// handler matches the whole filter again on the documents that come back.
func clinicIDFilter(filter *types.Document) (string, []any, bool) {
	v, err := filter.Get("_id")
	if err != nil {
		return "", nil, false
	}

	if cond, ok := v.(*types.Document); ok {
		if cond.Len() != 1 {
			return "", nil, false
		}

		in, err := cond.Get("$in")
		if err != nil {
			return "", nil, false
		}

		values, ok := in.(*types.Array)
		if !ok || values.Len() == 0 {
			return "", nil, false
		}

		args := make([]any, values.Len())
		for i := range args {
			value := must.NotFail(values.Get(i))
			switch value.(type) {
			case string, types.ObjectID:
				args[i] = string(must.NotFail(sjson.MarshalSingleValue(value)))
			default:
				return "", nil, false
			}
		}

		marks := strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ")
		return fmt.Sprintf(` WHERE %s IN (%s)`, metadata.IDColumn, marks), args, true
	}

	switch v.(type) {
	case string, types.ObjectID:
		return fmt.Sprintf(` WHERE %s = ?`, metadata.IDColumn), []any{string(must.NotFail(sjson.MarshalSingleValue(v)))}, true
	}

	return "", nil, false
}

// Explain implements backends.Collection interface.""",
)
FERRETDB_ID_FILTER_QUERY = (
    "internal/backends/sqlite/collection.go",
    """	if params.Filter.Len() == 1 {
		v, _ := params.Filter.Get("_id")
		switch v.(type) {
		case string, types.ObjectID:
			whereClause = fmt.Sprintf(` WHERE %s = ?`, metadata.IDColumn)
			args = []any{string(must.NotFail(sjson.MarshalSingleValue(v)))}
		}
	}""",
    """	if where, values, ok := clinicIDFilter(params.Filter); ok {
		whereClause, args = where, values
	}""",
)
FERRETDB_ID_FILTER_EXPLAIN = (
    "internal/backends/sqlite/collection.go",
    """	if params.Filter.Len() == 1 {
		v, _ := params.Filter.Get("_id")
		switch v.(type) {
		case string, types.ObjectID:
			filterPushdown = true
			whereClause = fmt.Sprintf(` WHERE %s = ?`, metadata.IDColumn)
			args = []any{string(must.NotFail(sjson.MarshalSingleValue(v)))}
		}
	}""",
    """	if where, values, ok := clinicIDFilter(params.Filter); ok {
		filterPushdown = true
		whereClause, args = where, values
	}""",
)


# FerretDB v1 writes each document an update statement modifies in a transaction of its own (one SQLite
# commit, with its fsync, per document), so one `update` that marks a consumed batch's inbox records applied
# (`{_id: {$in: [...]}}`, multi) cost as many commits as the batch had events. The build collects the
# documents a statement modifies and writes them with one `UpdateAll` (one transaction) per
# FERRETDB_UPDATE_CHUNK documents, and at the end. The statement's query keeps reading its own snapshot
# while documents are pending or written (SQLite's WAL; each write goes through another pooled connection,
# as each document's did), and its result is only returned at its end, so nothing reads them in between.
# A statement that fails part-way leaves none of its pending documents written (MongoDB may leave some);
# our one multi-document update, a batch's inbox settle, is idempotent and is retried or redelivered whole.
FERRETDB_UPDATE_CHUNK = 256
FERRETDB_UPDATE_BATCH = (
    "internal/handler/common/update.go",
    """	isFindAndModify := (strings.ToLower(cmd) == "findandmodify")

	for {""",
    """	isFindAndModify := (strings.ToLower(cmd) == "findandmodify")

	// clinic-backbone: the modified documents, written together (one transaction) rather than one by one
	var pending []*types.Document
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}

		if _, err := c.UpdateAll(ctx, &backends.UpdateAllParams{Docs: pending}); err != nil {
			return err
		}

		result.Modified.Count += int32(len(pending))
		if isFindAndModify {
			result.Modified.Doc = pending[len(pending)-1]
		}

		pending = nil

		return nil
	}

	for {""",
)
FERRETDB_UPDATE_BATCH_END = (
    "internal/handler/common/update.go",
    """			if !upsert {
				return result, nil
			}""",
    """			if !upsert {
				if err = flush(); err != nil {
					return nil, lazyerrors.Error(err)
				}

				return result, nil
			}""",
)
FERRETDB_UPDATE_BATCH_WRITE = (
    "internal/handler/common/update.go",
    """		} else if modified {
			_, err := c.UpdateAll(ctx, &backends.UpdateAllParams{Docs: []*types.Document{doc}})
			if err != nil {
				return nil, lazyerrors.Error(err)
			}

			result.Modified.Count++
			if isFindAndModify {
				result.Modified.Doc = doc
			}
		}""",
    f"""		}} else if modified {{
			pending = append(pending, doc)
			if len(pending) >= {FERRETDB_UPDATE_CHUNK} {{
				if err = flush(); err != nil {{
					return nil, lazyerrors.Error(err)
				}}
			}}
		}}""",
)

class InfraError(RuntimeError):
    """A failure a person can act on; the message says what and where to look."""


@dataclass(frozen=True)
class Layout:
    cache: Path
    state: Path
    kafka_port: int = 9092
    controller_port: int = 9093
    mongo_port: int = 27017
    host: str = "127.0.0.1"

    @classmethod
    def from_env(cls, **ports: int | None) -> Layout:
        cache = Path(os.environ.get("CLINIC_CACHE_DIR", Path.home() / ".cache" / "clinic-backbone"))
        state = Path(os.environ.get("CLINIC_STATE_DIR", ROOT / ".local"))
        given = {k: v for k, v in ports.items() if v is not None}
        defaults = {
            "kafka_port": int(os.environ.get("CLINIC_KAFKA_PORT", 9092)),
            "mongo_port": int(os.environ.get("CLINIC_MONGO_PORT", 27017)),
        }
        defaults["controller_port"] = int(os.environ.get("CLINIC_CONTROLLER_PORT", given.get("kafka_port", defaults["kafka_port"]) + 1))
        return cls(cache=cache, state=state, **{**defaults, **given})

    @property
    def kafka_libs(self) -> Path:
        return self.cache / f"kafka-{KAFKA_VERSION}" / "libs"

    @property
    def ferretdb_binary(self) -> Path:
        return self.cache / f"ferretdb-{FERRETDB_VERSION}-{_source_hash(ROOT / 'infra' / 'ferretdb')}" / "ferretdb-local"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def mongodb_url(self) -> str:
        return f"mongodb://{self.host}:{self.mongo_port}/"

    def env_lines(self) -> str:
        return f"KAFKA_BOOTSTRAP_SERVERS={self.bootstrap}\nMONGODB_URL={self.mongodb_url}"


# -- fetch and build -------------------------------------------------------------------------------


def fetch_kafka(layout: Layout, say=print) -> Path:
    libs = layout.kafka_libs
    marker = libs / ".complete"
    if marker.exists():
        return libs
    _need("mvn", "Maven fetches the Kafka jars; install Maven (Debian package 'maven').")
    say(f"fetching Apache Kafka {KAFKA_VERSION} jars from Maven Central into {libs} (first time only) ...")
    started = time.monotonic()
    tmp = libs.with_name("libs.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    _run(
        [
            "mvn", "-q", "-B", "-f", str(ROOT / "infra" / "kafka" / "pom.xml"),
            "dependency:copy-dependencies", f"-DoutputDirectory={tmp}", "-DincludeScope=runtime",
            f"-Dkafka.version={KAFKA_VERSION}",
        ],
        "Maven could not fetch the Kafka jars",
        progress=_ticker(say, "Maven is fetching the Kafka jars"),
    )
    if not (tmp / f"kafka_2.13-{KAFKA_VERSION}.jar").exists():
        raise InfraError(f"Maven finished but kafka_2.13-{KAFKA_VERSION}.jar is not in {tmp}")
    shutil.rmtree(libs, ignore_errors=True)
    tmp.rename(libs)
    marker.write_text(KAFKA_VERSION)
    say(f"fetched Apache Kafka {KAFKA_VERSION} in {time.monotonic() - started:.0f}s")
    return libs


def build_ferretdb(layout: Layout, say=print) -> Path:
    """Build our wrapper against a patched copy of the FerretDB module (the FERRETDB_*PATCH and FERRETDB_ID_FILTER* texts). The copy and
    the wrapper with its `replace` directive live in a build folder next to the binary, never in git."""
    binary = layout.ferretdb_binary
    if binary.exists():
        return binary
    _need("go", "Go builds FerretDB; install Go 1.22 or newer.")
    say(f"building FerretDB {FERRETDB_VERSION} (SQLite backend) with Go into {binary.parent} (first time only) ...")
    started = time.monotonic()
    env = {**os.environ, "CGO_ENABLED": os.environ.get("CGO_ENABLED", "0"), "GOFLAGS": "-mod=mod -buildvcs=false"}
    build = binary.parent / "build"
    _remove(build)
    wrapper = build / "wrapper"
    wrapper.mkdir(parents=True)
    for name in WRAPPER_FILES:
        shutil.copy(ROOT / "infra" / "ferretdb" / name, wrapper / name)
    _check_required_version(wrapper, env)
    upstream = _copy_module(wrapper, build / "FerretDB", env, _ticker(say, "Go is downloading the FerretDB module"))
    for name, _, patches in _patch_groups():
        for patch in patches:
            _patch(upstream, *patch, name=name)
    say(f"patched FerretDB in {upstream}: " + ", ".join(f"{patches[0][0]} ({purpose})" for _, purpose, patches in _patch_groups()))
    _run(["go", "mod", "edit", f"-replace={FERRETDB_MODULE}={upstream}"], "go mod edit of the wrapper copy failed", cwd=wrapper, env=env)
    _run(["go", "build", "-trimpath", "-o", str(binary) + ".partial", "."], "go build of FerretDB failed",
         progress=_ticker(say, "Go is building FerretDB"), cwd=wrapper, env=env)
    os.replace(str(binary) + ".partial", binary)
    say(f"built FerretDB {FERRETDB_VERSION} in {time.monotonic() - started:.0f}s")
    return binary


def _check_required_version(wrapper: Path, env: dict[str, str]) -> None:
    module = json.loads(_run(["go", "mod", "edit", "-json"], "reading infra/ferretdb/go.mod failed", cwd=wrapper, env=env))
    required = {r["Path"]: r["Version"] for r in module.get("Require") or []}.get(FERRETDB_MODULE)
    if required != f"v{FERRETDB_VERSION}":
        raise InfraError(f"infra/ferretdb/go.mod requires {FERRETDB_MODULE} {required} but FERRETDB_VERSION in infra/local.py is {FERRETDB_VERSION}; make them agree")


def _copy_module(wrapper: Path, target: Path, env: dict[str, str], progress=None) -> Path:
    """A writable copy of the FerretDB module from Go's module cache (which is read-only and refused by -overlay)."""
    found = json.loads(
        _run(["go", "mod", "download", "-json", f"{FERRETDB_MODULE}@v{FERRETDB_VERSION}"], "go could not download the FerretDB module",
             progress=progress, cwd=wrapper, env=env)
    )
    if not found.get("Dir"):
        raise InfraError(f"go mod download did not say where {FERRETDB_MODULE}@v{FERRETDB_VERSION} is: {found.get('Error', found)}")
    shutil.copytree(found["Dir"], target)
    _make_writable(target)
    return target


def _patch_groups() -> tuple[tuple[str, str, tuple[tuple[str, str, str], ...]], ...]:
    """Every change the build makes to FerretDB: (the constants' names in this module, what it is for, the patches)."""
    return (
        ("FERRETDB_ID_PATCH", "the _id lookups use the _id index", (FERRETDB_ID_PATCH,)),
        ("FERRETDB_UPDATE_PATCH", "an update releases each statement's connection", (FERRETDB_UPDATE_PATCH,)),
        ("FERRETDB_UPSERT_*", "an upsert that lost the race to insert updates the document, as on MongoDB", (FERRETDB_UPSERT_PATCH, FERRETDB_UPSERT_AGAIN)),
        ("FERRETDB_ID_FILTER*", "any filter's _id equality or $in goes to SQLite", (FERRETDB_ID_FILTER, FERRETDB_ID_FILTER_QUERY, FERRETDB_ID_FILTER_EXPLAIN)),
        ("FERRETDB_TRACK_PATCH, FERRETDB_UNTRACK_PATCH", "no lifetime tracking outside debug builds", (FERRETDB_TRACK_PATCH, FERRETDB_UNTRACK_PATCH)),
        (
            "FERRETDB_UPDATE_BATCH*", "one transaction for the documents an update statement modifies",
            (FERRETDB_UPDATE_BATCH, FERRETDB_UPDATE_BATCH_END, FERRETDB_UPDATE_BATCH_WRITE),
        ),
    )


def _patches() -> tuple[tuple[str, str, str], ...]:
    return tuple(patch for _, _, patches in _patch_groups() for patch in patches)


def _patch(module: Path, relative: str, old: str, new: str, *, name: str = "the patch") -> None:
    path = module / relative
    text = path.read_text() if path.exists() else ""
    if text.count(old) != 1:
        raise InfraError(
            f"cannot patch FerretDB {FERRETDB_VERSION}: expected the text `{old}` once in {relative} of {FERRETDB_MODULE}, "
            f"found it {text.count(old)} times (looked in {path}). After an upgrade, check whether FerretDB still has the defect "
            f"the comment of {name} in infra/local.py describes, then update or drop that patch"
        )
    path.write_text(text.replace(old, new))


def _make_writable(folder: Path) -> None:
    for path in (folder, *folder.rglob("*")):
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def _remove(folder: Path) -> None:
    if folder.exists():
        _make_writable(folder)
        shutil.rmtree(folder)


# -- start and stop --------------------------------------------------------------------------------


def up(layout: Layout, say=print, wait_seconds: float = 120.0, *, store: bool = True) -> None:
    """Start Kafka and (unless ``store`` is false) FerretDB, and wait until they answer."""
    layout.state.mkdir(parents=True, exist_ok=True)
    libs = fetch_kafka(layout, say)
    binary = build_ferretdb(layout, say) if store else None
    kafka_started = _start_kafka(layout, libs, say)
    ferretdb_started = binary is not None and _start_ferretdb(layout, binary, say)
    deadline = time.monotonic() + wait_seconds
    if kafka_started:
        _wait(lambda: _kafka_ready(layout), "kafka", layout, deadline, f"Kafka did not answer on {layout.bootstrap}")
    if ferretdb_started:
        _wait(lambda: _mongo_ready(layout), "ferretdb", layout, deadline, f"FerretDB did not answer on {layout.host}:{layout.mongo_port}")


def down(layout: Layout, say=print, wipe: bool = False, *, names: tuple[str, ...] = ("ferretdb", "kafka")) -> None:
    """Stop what ``up`` started here (the data stays unless ``wipe``)."""
    for name in names:
        pid = _pid(layout, name)
        if pid is None:
            continue
        say(f"stopping {name} (pid {pid}) ...")
        _terminate(pid, grace=30.0 if name == "kafka" else 10.0)
        (layout.state / f"{name}.pid").unlink(missing_ok=True)
    if wipe:
        for name in names:
            shutil.rmtree(layout.state / name, ignore_errors=True)
        say(f"wiped data under {layout.state}")


def stop_component(layout: Layout, name: str, say=print) -> None:
    """Stop one of the two processes ``up`` started here ("kafka" or "ferretdb"), keeping its data."""
    down(layout, say, names=(_component(name),))


def start_component(layout: Layout, name: str, say=print, wait_seconds: float = 120.0) -> None:
    """Start one of the two processes again on its data (after ``stop_component``) and wait until it answers."""
    name = _component(name)
    layout.state.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_seconds
    if name == "kafka":
        if _start_kafka(layout, fetch_kafka(layout, say), say):
            _wait(lambda: _kafka_ready(layout), "kafka", layout, deadline, f"Kafka did not answer on {layout.bootstrap}")
    elif _start_ferretdb(layout, build_ferretdb(layout, say), say):
        _wait(lambda: _mongo_ready(layout), "ferretdb", layout, deadline, f"FerretDB did not answer on {layout.host}:{layout.mongo_port}")


def _component(name: str) -> str:
    if name not in ("kafka", "ferretdb"):
        raise InfraError(f"unknown component {name!r}: kafka or ferretdb")
    return name


def status(layout: Layout) -> dict[str, str]:
    result = {}
    for name, port in (("kafka", layout.kafka_port), ("ferretdb", layout.mongo_port)):
        pid = _pid(layout, name)
        listening = _port_open(layout.host, port)
        if pid and listening:
            result[name] = f"running (pid {pid}) on {layout.host}:{port}"
        elif listening:
            result[name] = f"something else is listening on {layout.host}:{port}"
        elif pid:
            result[name] = f"starting (pid {pid}), not answering on {layout.host}:{port} yet"
        else:
            result[name] = "stopped"
    return result


def _start_kafka(layout: Layout, libs: Path, say, extra_properties: str = "", format_args: tuple[str, ...] = ()) -> bool:
    """Start the broker unless ours runs already; reuse a Kafka broker that already answers on the port
    (started by another checkout, say). Returns whether a process was started. ``extra_properties``
    override the defaults (infra/security.py: SASL listeners and the authorizer); ``format_args`` go to
    the storage format (its SCRAM credentials)."""
    if _pid(layout, "kafka"):
        return True
    if _port_open(layout.host, layout.kafka_port) and _kafka_ready(layout):
        say(f"a Kafka broker already answers on {layout.bootstrap}; using it (not started here, not stopped by `infra down`)")
        return False
    _port_free(layout.host, layout.kafka_port, "Kafka", "--kafka-port")
    _port_free(layout.host, layout.controller_port, "the Kafka controller", "--controller-port")
    java = shutil.which("java") or _fail("java is not on PATH; Kafka needs Java 17 or newer.")
    jvm_options = kafka_jvm_options(os.environ)  # a bad KAFKA_*_OPTS stops us before anything is written
    home = layout.state / "kafka"
    data = home / "data"
    properties = home / "server.properties"
    home.mkdir(parents=True, exist_ok=True)
    properties.touch(mode=0o600)  # may hold the broker's own credentials: private before anything is written
    properties.chmod(0o600)
    properties.write_text(_server_properties(layout, data) + extra_properties)
    classpath = f"{libs}/*"
    if not (data / "meta.properties").exists():
        cluster_id = "c" + base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")[1:]  # never "-..." (read as an option)
        _run([java, "-cp", classpath, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(properties), *format_args],
             "formatting Kafka storage failed")
    say(f"starting Kafka {KAFKA_VERSION} on {layout.bootstrap} ...")
    command = [
        java, *jvm_options,
        f"-Dlog4j2.configurationFile={ROOT / 'infra' / 'kafka' / 'log4j2.properties'}",
        "-cp", classpath, "kafka.Kafka", str(properties),
    ]
    _spawn(layout, "kafka", command)
    return True


def _start_ferretdb(layout: Layout, binary: Path, say) -> bool:
    if _pid(layout, "ferretdb"):
        return True
    if _port_open(layout.host, layout.mongo_port) and _mongo_ready(layout):
        say(f"a MongoDB-compatible server already answers on {layout.host}:{layout.mongo_port}; using it (not started here)")
        return False
    _port_free(layout.host, layout.mongo_port, "FerretDB", "--mongo-port")
    data = layout.state / "ferretdb" / "data"
    data.mkdir(parents=True, exist_ok=True)
    say(f"starting FerretDB {FERRETDB_VERSION} on {layout.host}:{layout.mongo_port} ...")
    _spawn(layout, "ferretdb", [str(binary), "--listen", f"{layout.host}:{layout.mongo_port}", "--data-dir", str(data)], env=ferretdb_env(os.environ))
    return True


KAFKA_HEAP_OPTS = "-Xms256m -Xmx1g"
KAFKA_JVM_PERFORMANCE_OPTS = "-XX:+UseG1GC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true"
"""The local broker compiles with the JVM's quick compiler (C1) only. With the default tiered compilation the
optimising compiler (C2) kept compiling for minutes after start-up, with more CPU than the broker's request
threads; C1 only cut Kafka's CPU per benchmark journey by about a third (README "Benchmarks"). A broker that runs for months with steady heavy traffic wants C2 back:
``KAFKA_HEAP_OPTS`` and ``KAFKA_JVM_PERFORMANCE_OPTS`` set by the caller (two of the variables Kafka's own start
scripts read; no others are) replace these."""


def kafka_jvm_options(environ: Mapping[str, str]) -> list[str]:
    """The JVM options the local broker starts with: heap, then compiler and collector (module constants,
    or the caller's ``KAFKA_HEAP_OPTS`` / ``KAFKA_JVM_PERFORMANCE_OPTS``, split as a shell would)."""
    options = []
    for name, default in (("KAFKA_HEAP_OPTS", KAFKA_HEAP_OPTS), ("KAFKA_JVM_PERFORMANCE_OPTS", KAFKA_JVM_PERFORMANCE_OPTS)):
        try:
            options += shlex.split(environ.get(name) or default)
        except ValueError as error:  # an unbalanced quote
            raise InfraError(f"{name} cannot be split into JVM options: {error}") from None
    return options


FERRETDB_GOGC = "400"
"""Go's garbage collector runs when the heap has grown by this percentage (Go's default is 100). FerretDB
allocates for every document it decodes, and at 100 it spent about a tenth of its CPU collecting: with
400 it used 0.115 CPU s per journey instead of 0.133 (the journey benchmark, README "Benchmarks") for a
resident size under 200 MB. A GOGC set by the caller is kept."""


def ferretdb_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment the local FerretDB runs with: the caller's, with ``GOGC`` defaulting to ``FERRETDB_GOGC``."""
    return {"GOGC": FERRETDB_GOGC, **environ}


def _server_properties(layout: Layout, data: Path) -> str:
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{layout.host}:{layout.controller_port}",
            f"listeners=PLAINTEXT://{layout.host}:{layout.kafka_port},CONTROLLER://{layout.host}:{layout.controller_port}",
            f"advertised.listeners=PLAINTEXT://{layout.host}:{layout.kafka_port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={data}",
            "num.partitions=3",
            "offsets.topic.num.partitions=6",
            "offsets.topic.replication.factor=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            # Topics exist only because a deployment created them, with its partition count, before any
            # consumer subscribes (see docs/liveness.md). With automatic creation on, every client's
            # metadata request for a topic the broker has not heard of yet creates it with the broker's
            # defaults, racing the services' own creation ("Auto topic creation failed ...
            # TOPIC_ALREADY_EXISTS" in the broker log) and hiding a missing create.
            "auto.create.topics.enable=false",
            "",
        ]
    )


def _spawn(layout: Layout, name: str, command: list[str], env: Mapping[str, str] | None = None) -> None:
    with open(layout.state / f"{name}.log", "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env)
    (layout.state / f"{name}.pid").write_text(str(process.pid))


def _wait(probe, name: str, layout: Layout, deadline: float, message: str) -> None:
    while time.monotonic() < deadline:
        if _pid(layout, name) is None:
            raise InfraError(f"{name} exited during start-up; last lines of {layout.state / (name + '.log')}:\n{_tail(layout.state / (name + '.log'))}")
        if probe():
            return
        time.sleep(0.25)
    raise InfraError(f"{message} in time; see {layout.state / (name + '.log')}")


def _kafka_ready(layout: Layout) -> bool:
    """The broker answers an ApiVersions request (it is a Kafka broker, not just an open port)."""
    request = (
        b"\x00\x12"  # ApiVersions
        b"\x00\x00"  # version 0
        b"\x00\x00\x00\x01"  # correlation id
        b"\x00\x05probe"  # client id
    )
    try:
        with socket.create_connection((layout.host, layout.kafka_port), timeout=1) as sock:
            sock.sendall(len(request).to_bytes(4, "big") + request)
            header = sock.recv(4)
            return len(header) == 4 and int.from_bytes(header, "big") > 0
    except OSError:
        return False


def _mongo_ready(layout: Layout) -> bool:
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    try:
        with MongoClient(layout.mongodb_url, serverSelectionTimeoutMS=500, connectTimeoutMS=500) as client:
            client.admin.command("ping")
        return True
    except PyMongoError:
        return False


def _pid(layout: Layout, name: str) -> int | None:
    path = layout.state / f"{name}.pid"
    try:
        pid = int(path.read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    try:  # a reaped-but-recycled pid would not be ours; a zombie of ours counts as gone
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.split(") ", 1)[1].startswith("Z"):
            return None
    except (OSError, IndexError):
        pass
    return pid


def _terminate(pid: int, grace: float) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            pass
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _port_free(host: str, port: int, what: str, option: str) -> None:
    if _port_open(host, port):
        raise InfraError(f"port {host}:{port} for {what} is already taken by another process; stop it or pick another port with {option}")


def _run(command: list[str], failure: str, progress=None, **kwargs) -> str:
    """Run a tool and return its output; ``progress(seconds)`` is called every PROGRESS_SECONDS while it runs."""
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
    try:
        while True:
            try:
                stdout, stderr = process.communicate(timeout=PROGRESS_SECONDS)
                break
            except subprocess.TimeoutExpired:
                if progress is not None:
                    progress(time.monotonic() - started)
    except BaseException:  # Ctrl-C included: leave no Maven or Go behind
        process.kill()
        process.wait()
        raise
    if process.returncode != 0:
        output = (stdout + stderr).strip().splitlines()
        raise InfraError(f"{failure} (exit {process.returncode}):\n" + "\n".join(output[-20:]))
    return stdout


def _ticker(say, doing: str):
    """For a step of the first run that takes minutes: a line every few seconds with the time so far."""
    return lambda seconds: say(f"  ... {doing} ({seconds:.0f}s so far)")


def _need(tool: str, hint: str) -> None:
    if shutil.which(tool) is None:
        raise InfraError(f"{tool} is not on PATH. {hint}")


def _fail(message: str):
    raise InfraError(message)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _source_hash(folder: Path) -> str:
    """The wrapper's sources and the patches applied to FerretDB: a change to either builds a new binary."""
    digest = hashlib.sha256()
    for name in WRAPPER_FILES:
        digest.update((folder / name).read_bytes())
    digest.update(repr(_patches()).encode())
    return digest.hexdigest()[:12]
