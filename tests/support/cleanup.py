"""Remove what one test (or benchmark) created: its databases and its topics, by their prefixes."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

from shared.settings import Settings


async def drop_deployment(settings: Settings, topics: bool = True) -> None:
    client = AsyncMongoClient(settings.mongodb_url, serverSelectionTimeoutMS=3000)
    try:
        for name in await client.list_database_names():
            if name.startswith(settings.database_prefix):
                await client.drop_database(name)
    finally:
        await client.close()
    if not topics or not settings.topic_prefix:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        ours = [t for t in await admin.list_topics() if t.startswith(settings.topic_prefix)]
        if ours:
            await admin.delete_topics(ours)
    finally:
        await admin.close()
