#!/bin/bash
# Kafka for docker compose (apache/kafka image): SASL/SCRAM-SHA-512 on every client listener, SASL/PLAIN
# between broker and controller, the KRaft StandardAuthorizer with clinic-admin as super user, and nothing
# allowed without an ACL (`clinic acl apply`, run by the kafka-setup service, creates them). The same
# configuration as the local secure broker of infra/security.py. Secrets come from /run/secrets.
set -euo pipefail
umask 077
secret() { tr -d '\n' < "/run/secrets/$1"; }
ADMIN_PASSWORD=$(secret kafka_admin_password)
CONTROLLER_PASSWORD=$(secret kafka_controller_password)
CONFIG=/tmp/clinic/server.properties
mkdir -p /tmp/clinic

cat > "$CONFIG" <<PROPERTIES
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@kafka:9093
controller.listener.names=CONTROLLER
listeners=INTERNAL://:9092,CONTROLLER://:9093,EXTERNAL://:9094
advertised.listeners=INTERNAL://kafka:9092,EXTERNAL://localhost:9094
listener.security.protocol.map=INTERNAL:SASL_PLAINTEXT,EXTERNAL:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT
inter.broker.listener.name=INTERNAL
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.internal.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="clinic-admin" password="$ADMIN_PASSWORD";
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="controller" password="$CONTROLLER_PASSWORD" user_controller="$CONTROLLER_PASSWORD";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:clinic-admin;User:controller
allow.everyone.if.no.acl.found=false
auto.create.topics.enable=false
log.dirs=/var/lib/kafka/data
num.partitions=3
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPERTIES

# The client configuration of the healthcheck (and of an operator's kafka-*.sh inside the container).
cat > /tmp/clinic/admin.properties <<PROPERTIES
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="clinic-admin" password="$ADMIN_PASSWORD";
PROPERTIES

# Every principal's SCRAM credentials are written when the storage is formatted, on the first start only
# (the kafka-data volume keeps them; to rotate a password later use kafka-configs.sh --alter --add-config).
scram=()
for user in admin consultation scheduling inventory aftercare operator integrator viewer; do
  scram+=(--add-scram "SCRAM-SHA-512=[name=clinic-$user,password=$(secret "kafka_${user}_password")]")
done
/opt/kafka/bin/kafka-storage.sh format --config "$CONFIG" --cluster-id "$CLUSTER_ID" --ignore-formatted "${scram[@]}" > /dev/null
exec /opt/kafka/bin/kafka-server-start.sh "$CONFIG"
