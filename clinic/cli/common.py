"""What every `clinic` command shares: exit codes, the Kafka flag, topic names, one-line failures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError, NodeNotReadyError, RequestTimedOutError
from rich.console import Console

from clinic.operations import NotFound
from shared.contracts import DLQ_SUFFIX, REGISTRY, UnknownEventType, topic_of
from shared.runtime import store
from shared.runtime.kafka_client import denial
from shared.settings import Settings, redact

OK, FAILED, USAGE, UNREACHABLE, DENIED, INTERRUPTED = 0, 1, 2, 3, 4, 130
EXIT_CODES = (
    "Exit status: 0 done; 1 a check failed (lag above --threshold, infra not running, a refused event, a missing topic); "
    "2 bad usage (unknown flag, topic or event, invalid data or settings); 3 Kafka or the store did not answer; "
    "4 Kafka or the store refused the credentials or a grant is missing; 130 interrupted."
)
T = TypeVar("T")

Bootstrap = Annotated[
    str | None,
    typer.Option("--bootstrap-server", "--bootstrap", metavar="HOST:PORT", show_default="$KAFKA_BOOTSTRAP_SERVERS",
                 help="Kafka bootstrap servers (--bootstrap is the old name)."),
]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output (JSON).")]


def console() -> Console:
    """Wide enough for the tables when the output is piped to a file or a script."""
    found = Console()
    return found if found.is_terminal else Console(width=180)


def settings(bootstrap: str | None = None) -> Settings:
    found = Settings()
    return found.model_copy(update={"kafka_bootstrap_servers": bootstrap}) if bootstrap else found


def echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


def fail(command: str, message: str, code: int = FAILED) -> NoReturn:
    typer.echo(f"clinic {command}: {message}", err=True)
    raise typer.Exit(code)


def run(command: str, coroutine: Awaitable[T], found: Settings) -> T:
    """Run the command's work; a broker or store that does not answer, or a missing topic, is one line."""
    from pymongo.errors import ConfigurationError, ConnectionFailure, PyMongoError

    try:
        try:
            return asyncio.run(coroutine)  # type: ignore[arg-type]
        except Exception as error:  # refused credentials or a missing grant: say which, exit 4
            denied = asyncio.run(denial(error, found)) or store.refusal(error)
            if denied is not None:
                fail(command, denied, DENIED)
            raise
    except NotFound as error:
        fail(command, f"{error} on Kafka at {found.kafka_bootstrap_servers}")
    except (KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError, RequestTimedOutError, TimeoutError, ConnectionError) as error:
        fail(command, f"Kafka at {found.kafka_bootstrap_servers} did not answer ({error.__class__.__name__}); is it running, "
             f"with a {found.kafka_security_protocol} listener there (CLINIC_KAFKA_SECURITY_PROTOCOL)? (clinic infra status)", UNREACHABLE)
    except KafkaError as error:
        fail(command, f"Kafka at {found.kafka_bootstrap_servers} refused: {error.__class__.__name__}")
    except ConfigurationError as error:  # a malformed MONGODB_URL, an SRV name that does not resolve
        fail(command, f"the store at {redact(found.mongodb_url)} cannot be used: {redact(str(error))[:200]}", USAGE)
    except ConnectionFailure as error:
        fail(command, f"the store at {redact(found.mongodb_url)} did not answer ({error.__class__.__name__}); is it running? (clinic infra status)", UNREACHABLE)
    except PyMongoError as error:
        fail(command, f"the store at {redact(found.mongodb_url)} refused: {error.__class__.__name__}")


def topic(name: str, prefix: str, hint: str = "TOPIC") -> str:
    """A topic, CloudEvents type, event name or class name (a dead-letter topic too) -> the topic."""
    bare = name.removeprefix(prefix) if prefix else name
    dead = bare.endswith(DLQ_SUFFIX)
    try:
        model = REGISTRY.by_name(bare.removesuffix(DLQ_SUFFIX))
    except UnknownEventType:
        raise typer.BadParameter(f"unknown topic or event {name!r}; `clinic events` lists them", param_hint=hint) from None
    return topic_of(model, prefix) + (DLQ_SUFFIX if dead else "")


def dlq_topic(name: str, prefix: str) -> str:
    found = topic(name, prefix)
    return found if found.endswith(DLQ_SUFFIX) else found + DLQ_SUFFIX
