#!/usr/bin/env bash
# make run: a local InfluxDB, then `proactive serve` with the embedded broker.
# Ctrl-C stops both (InfluxDB only if this script started it).
set -euo pipefail
cd "$(dirname "$0")/.."

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

started_influx=0
if ! scripts/influxdb.sh status >/dev/null 2>&1; then
  scripts/influxdb.sh start
  started_influx=1
fi
stop_influx() { [ "$started_influx" = 1 ] && scripts/influxdb.sh stop || true; }
trap stop_influx EXIT

# Port 1883 is often taken already (this machine runs Mosquitto there). The
# embedded broker then moves to 11883 rather than failing or silently
# sharing a broker it does not control.
if [ -z "${PROACTIVE_MQTT_URL:-}" ] && [ -z "${PROACTIVE_MQTT_LISTEN:-}" ]; then
  if listening 1883; then
    export PROACTIVE_MQTT_LISTEN=127.0.0.1:11883
    echo "run: port 1883 is taken (another MQTT broker?); the embedded broker listens on ${PROACTIVE_MQTT_LISTEN} instead."
    echo "run: to use the broker on 1883 instead, set PROACTIVE_MQTT_URL=mqtt://127.0.0.1:1883"
  else
    export PROACTIVE_MQTT_LISTEN=:1883
  fi
fi
export PROACTIVE_RULES=${PROACTIVE_RULES:-rules/examples/*.yaml}
export PROACTIVE_LOG_FORMAT=${PROACTIVE_LOG_FORMAT:-text}
mkdir -p data
echo "run: devices publish to ${PROACTIVE_MQTT_URL:-mqtt://127.0.0.1:${PROACTIVE_MQTT_LISTEN##*:}} on devices/{id}/telemetry; HTTP on ${PROACTIVE_HTTP_ADDR:-:8080}"
bin/proactive serve "$@" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true' INT TERM
wait $pid || true
wait $pid 2>/dev/null || true
