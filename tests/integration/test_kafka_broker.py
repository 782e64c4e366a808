"""The broker the project runs is one our producer and consumers work against."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.runtime.kafka import ensure_topics, make_broker


async def test_idempotent_producer_publishes_with_acks_all(settings, run_id):
    topic = f"{settings.topic_prefix}idempotence"
    await ensure_topics(settings.kafka_bootstrap_servers, [topic], 1)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        sent = [await producer.send_and_wait(topic, f"m{i}-{run_id}".encode(), key=b"pt_IDEMPOTENT1") for i in range(3)]
        assert producer._txn_manager is not None, "idempotence was not negotiated"
        assert producer._txn_manager.producer_id >= 0
    finally:
        await producer.stop()
    assert [m.offset for m in sent] == [0, 1, 2]


async def test_the_runtime_broker_factory_publishes_through_an_idempotent_producer(settings, run_id):
    topic = f"{settings.topic_prefix}factory"
    await ensure_topics(settings.kafka_bootstrap_servers, [topic], 1)
    broker = make_broker(settings, client_id=f"test-{run_id}")
    await broker.start()
    try:
        await broker.publish(f"hello-{run_id}".encode(), topic=topic, key=b"pt_FACTORY01")
        producer = broker.config.producer._producer.producer
        assert producer._txn_manager is not None and producer._txn_manager.producer_id >= 0
    finally:
        await broker.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.seek_to_beginning()
        record = await consumer.getone()
    finally:
        await consumer.stop()
    assert record.value == f"hello-{run_id}".encode()
    assert record.key == b"pt_FACTORY01"


async def test_topics_are_created_with_the_configured_partitions(settings):
    topics = [f"{settings.topic_prefix}a", f"{settings.topic_prefix}b"]
    created = await ensure_topics(settings.kafka_bootstrap_servers, topics, 3)
    again = await ensure_topics(settings.kafka_bootstrap_servers, topics, 3)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await consumer.start()
    try:
        partitions = {t: consumer.partitions_for_topic(t) for t in topics}
        if None in partitions.values():
            await consumer._client.force_metadata_update()
            partitions = {t: consumer.partitions_for_topic(t) for t in topics}
    finally:
        await consumer.stop()
    assert sorted(created) == sorted(topics) and again == []
    assert partitions == {t: {0, 1, 2} for t in topics}


async def test_topics_are_created_with_explicit_retention_and_min_insync_replicas(settings):
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    from shared.runtime.kafka_client import Kafka, topic_configs

    settings = settings.model_copy(update={"dlq_retention_days": 45.0, "topic_retention_days": 3.0})
    events, dead = f"{settings.topic_prefix}retained", f"{settings.topic_prefix}retained.dlq"
    kafka = Kafka.of(settings)
    await ensure_topics(kafka.bootstrap, [events, dead], 1, options=kafka.options, configs=topic_configs(settings, [events, dead]))
    admin = kafka.admin()
    await admin.start()
    try:
        described = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in (events, dead)])
    finally:
        await admin.close()
    configs = {r[3]: {c[0]: c[1] for c in r[4]} for response in described for r in response.resources}
    assert configs[events]["retention.ms"] == str(3 * 24 * 3600 * 1000)
    assert configs[dead]["retention.ms"] == str(45 * 24 * 3600 * 1000)
    assert configs[events]["min.insync.replicas"] == configs[dead]["min.insync.replicas"] == "1"
