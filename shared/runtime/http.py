"""Each service's HTTP endpoints: liveness, readiness, Prometheus metrics and its AsyncAPI document."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared.contracts import EventData
from shared.contracts.asyncapi import specification

log = logging.getLogger("clinic.http")


class Health(Protocol):
    """What the endpoints need of a service (``shared.runtime.Service`` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def consumed(self) -> Sequence[type[EventData]]:
        """The contracts it reacts to, for its AsyncAPI document."""
        ...

    async def readiness(self) -> dict[str, bool]: ...

    def attention(self) -> dict[str, int]:
        """What an operator must look at although the service can go on (shown by /readyz, never gating it)."""
        ...

    async def refresh_gauges(self) -> None: ...


class HealthApp:
    """A small ASGI app; the routes are few and fixed, so no web framework is needed."""

    def __init__(self, service: Health) -> None:
        self.service = service

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        path = scope.get("path", "")
        if scope.get("method") != "GET":
            await _reply(send, 405, {"error": "only GET"})
        elif path == "/healthz":
            await _reply(send, 200, {"status": "alive", "service": self.service.name})
        elif path == "/readyz":
            checks = await self.service.readiness()
            await _reply(
                send, 200 if all(checks.values()) else 503, {"service": self.service.name, "ready": all(checks.values()), "checks": checks, "attention": self.service.attention()},
            )
        elif path == "/metrics":
            await self.service.refresh_gauges()
            await _reply(send, 200, generate_latest(), CONTENT_TYPE_LATEST)
        elif path == "/asyncapi.json":
            await _reply(send, 200, specification({self.service.name: list(self.service.consumed)}))
        else:
            await _reply(send, 404, {"error": "not found", "routes": ["/healthz", "/readyz", "/metrics", "/asyncapi.json"]})


async def _reply(send: Any, status: int, body: Any, content_type: str = "application/json") -> None:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the service owns SIGINT/SIGTERM and stops this server itself
        yield


async def serve(service: Health, host: str, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """Start serving in the background; ``server.should_exit = True`` then awaiting the task stops it."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        raise OSError(f"port {host}:{port} for the {service.name} health endpoints is already taken ({error.strerror}); set CLINIC_HTTP_PORT to another") from None
    config = uvicorn.Config(HealthApp(service), host=host, port=port, log_level="critical", access_log=False, lifespan="off")
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[listener]), name=f"{service.name}-http")
    while not server.started:
        if task.done():
            with contextlib.suppress(BaseException):
                task.result()
            raise OSError(f"port {host}:{port} for the {service.name} health endpoints is already taken or cannot be opened")
        await asyncio.sleep(0.02)
    return server, task
