"""The platform versions the system is built and tested against, for whoever states them: the Kafka
the local broker runs (infra/local.py) and the AsyncAPI documents name (``protocolVersion``)."""

KAFKA_VERSION = "4.4.0"
