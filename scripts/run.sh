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
# The platform talks to the InfluxDB this script uses: INFLUX_PORT moves
# both (scripts/influxdb.sh), unless PROACTIVE_INFLUX_URL names another.
export PROACTIVE_INFLUX_URL=${PROACTIVE_INFLUX_URL:-http://127.0.0.1:${INFLUX_PORT:-8086}}

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
# The demo's alerts fire during the fleet's catch-up to the wall clock, 1 to
# 3 hours in the past (simulator/scenarios/demo.yaml): the default of 1h
# would hold their SMS back.
export PROACTIVE_NOTIFY_MAX_ALERT_AGE=${PROACTIVE_NOTIFY_MAX_ALERT_AGE:-6h}
export PROACTIVE_LOG_FORMAT=${PROACTIVE_LOG_FORMAT:-text}
mkdir -p data
http_addr=${PROACTIVE_HTTP_ADDR:-:8080}
http_port=${http_addr##*:}
# Without a Twilio account, SMS are printed here and the customer's replies
# are played with `proactive sms reply`, which signs them like Twilio does:
# a demo config holds the public URL and a random auth token for that.
if [ -z "${PROACTIVE_CONFIG:-}" ] && [ -z "${PROACTIVE_TWILIO_ACCOUNT_SID:-}" ]; then
  if [ ! -f data/demo.yaml ]; then
    umask 077
    printf 'public_url: http://127.0.0.1:%s\ntwilio:\n  auth_token: demo-%s\n' "$http_port" "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" > data/demo.yaml
  fi
  # A run on another HTTP port keeps the token but moves the SMS links and
  # `sms reply` to that port.
  sed -i.bak "s|^public_url: .*|public_url: http://127.0.0.1:${http_port}|" data/demo.yaml && rm -f data/demo.yaml.bak
  export PROACTIVE_CONFIG=data/demo.yaml
fi
# The demo fleet, its customers (who may be texted at any hour) and two
# technicians: registered idempotently, so that rules scoped to models see
# the fridges and heat pumps and offers have slots to propose.
bin/proactive simulate --scenario "${SCENARIO:-demo}" --registry data/demo-fleet.csv
bin/proactive devices import data/demo-fleet.csv
bin/proactive devices import --technicians scripts/demo/technicians.csv
if [ ! -s data/demo-admin.token ]; then
  (umask 077; bin/proactive token create --role admin --name demo-admin > data/demo-admin.token 2>/dev/null)
fi

mqtt_port=${PROACTIVE_MQTT_LISTEN##*:}
echo "run: devices publish to ${PROACTIVE_MQTT_URL:-mqtt://127.0.0.1:${mqtt_port}} on devices/{id}/telemetry; HTTP on ${PROACTIVE_HTTP_ADDR:-:8080}"
bin/proactive serve "$@" &
pid=$!
# The fleet stops first, while the broker still takes its devices' offline
# statuses; then the platform.
stop() {
  if [ -n "${sim:-}" ]; then kill -TERM "$sim" 2>/dev/null || true; wait "$sim" 2>/dev/null || true; fi
  kill -TERM $pid 2>/dev/null || true
}
trap stop INT TERM

for _ in $(seq 300); do
  curl -fs "http://127.0.0.1:${http_port}/healthz" >/dev/null 2>&1 && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.2
done

if [ "${SIMULATE:-1}" = 1 ] && kill -0 $pid 2>/dev/null; then
  echo "run: starting the simulated fleet (scenario ${SCENARIO:-demo}): 8 days of history, then 22 hours fast-forwarded to the wall clock (about two minutes, when a few devices degrade and alerts appear), then real time until Ctrl-C. SIMULATE=0 skips it."
  echo "run: when an offer SMS is printed, answer as the customer from another shell:"
  echo "       PROACTIVE_CONFIG=${PROACTIVE_CONFIG:-data/demo.yaml} bin/proactive sms reply --from +4915550000003 1"
  echo "run: the dispatchers' page: http://127.0.0.1:${http_port}/ (sign in with the token in data/demo-admin.token)"
  echo "run: the API (same token):"
  echo "       curl -H \"Authorization: Bearer \$(cat data/demo-admin.token)\" \"http://127.0.0.1:${http_port}/api/v1/tickets?status=scheduled\""
  bin/proactive simulate --scenario "${SCENARIO:-demo}" --broker "${PROACTIVE_MQTT_URL:-mqtt://127.0.0.1:${mqtt_port}}" &
  sim=$!
fi
wait $pid || true
[ -n "${sim:-}" ] && kill -TERM "$sim" 2>/dev/null || true
wait 2>/dev/null || true
