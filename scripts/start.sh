#!/usr/bin/env bash
# npm start: the services, the schemas, then every Meterline role in one process.
# With EVENT_LOG=kafka and no KAFKA_BROKERS, it also starts the in-repo Kafka test broker
# (in memory, one node: for trying the Kafka path on a machine without Docker, not for keeping data).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/services.sh up

if [ "${EVENT_LOG:-redis}" = "kafka" ] && [ -z "${KAFKA_BROKERS:-}" ]; then
  port="${KAFKA_TEST_BROKER_PORT:-9092}"
  KAFKA_TEST_BROKER_PORT="$port" node --import tsx test/support/kafka-broker/main.ts &
  broker=$!
  trap 'kill "$broker" 2>/dev/null || true' EXIT
  for _ in $(seq 1 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.2
  done
  export KAFKA_BROKERS="127.0.0.1:$port"
  echo "kafka: in-repo test broker on $KAFKA_BROKERS (in memory)"
fi

node bin/meterline.mjs migrate
node bin/meterline.mjs all
