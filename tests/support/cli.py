"""Run the real `clinic` command as an operator would, against one test's topics and databases."""

from __future__ import annotations

import asyncio
import os
import sys


async def clinic(settings, *args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "MONGODB_URL": settings.mongodb_url.get_secret_value(),
        "CLINIC_TOPIC_PREFIX": settings.topic_prefix,
        "CLINIC_DATABASE_PREFIX": settings.database_prefix,
        **security_env(settings),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "clinic.cli.main", *args,
        env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    if stdin is not None:
        process.stdin.write(stdin)
    process.stdin.close()
    reading = asyncio.gather(process.stdout.read(), process.stderr.read())
    try:
        out, err = await asyncio.wait_for(asyncio.shield(reading), 60)
    except TimeoutError:  # say what it had printed, not only that it hung
        process.kill()
        out, err = await reading
        raise AssertionError(f"clinic {' '.join(args)} still running after 60 s; stdout: {out.decode()!r}; stderr: {err.decode()[-2000:]!r}") from None
    await process.wait()
    return process.returncode, out.decode(), err.decode()


def security_env(settings) -> dict[str, str]:
    """The Kafka security settings as the environment variables a process reads (set ones only)."""
    env = {"CLINIC_KAFKA_SECURITY_PROTOCOL": settings.kafka_security_protocol, "CLINIC_KAFKA_SASL_MECHANISM": settings.kafka_sasl_mechanism}
    for name in ("kafka_username", "kafka_password", "kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile", "kafka_ssl_key_password"):
        value = getattr(settings, name)
        if value is not None:
            env[f"CLINIC_{name.upper()}"] = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
    return env
