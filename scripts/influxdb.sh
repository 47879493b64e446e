#!/usr/bin/env bash
# Runs the local InfluxDB OSS 1.8 that `make run` and developers use.
#
#   scripts/influxdb.sh start|stop|status
#
# Environment:
#   INFLUXD      influxd binary            (default: <repo>/bin/influxd, built by `make bin/influxd`)
#   INFLUX_DIR   config, data, log and pid (default: <repo>/data/influxdb)
#   INFLUX_PORT  HTTP port on 127.0.0.1    (default: 8086; the RPC/backup port is INFLUX_PORT+2)
#
# The platform writes through the v2-compatible write API and reads in InfluxQL through
# /query: URL http://127.0.0.1:PORT, bucket "telemetry/autogen", token empty (auth is off).
#
# Needs: bash, curl, ps (all present on Debian by default).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INFLUXD="${INFLUXD:-$root/bin/influxd}"
INFLUX_DIR="${INFLUX_DIR:-$root/data/influxdb}"
INFLUX_PORT="${INFLUX_PORT:-8086}"

url="http://127.0.0.1:$INFLUX_PORT"
rpc_port=$((INFLUX_PORT + 2))
pidfile="$INFLUX_DIR/influxd.pid"
logfile="$INFLUX_DIR/influxd.log"
conffile="$INFLUX_DIR/influxd.conf"

die() {
	echo "influxdb: $*" >&2
	exit 1
}

command -v curl >/dev/null || die "curl is required (apt-get install curl)"

# pid prints the pid from the pid file if that process is alive and is an influxd;
# a stale file (crash, reboot, pid reused) is not trusted.
pid() {
	[[ -f $pidfile ]] || return 1
	local p
	p="$(cat "$pidfile")"
	[[ $p =~ ^[0-9]+$ ]] || return 1
	kill -0 "$p" 2>/dev/null || return 1
	ps -p "$p" -o command= 2>/dev/null | grep -q influxd || return 1
	echo "$p"
}

ping_ok() {
	[[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url/ping" || true)" == 204 ]]
}

port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

write_config() {
	mkdir -p "$INFLUX_DIR"
	# Only what differs from the 1.8 defaults. Monitor and continuous queries are off
	# because nothing here uses them and they cost CPU on a laptop.
	cat >"$conffile" <<EOF
# Written by scripts/influxdb.sh start; edits are overwritten.
reporting-disabled = true
bind-address = "127.0.0.1:$rpc_port"

[meta]
  dir = "$INFLUX_DIR/meta"

[data]
  dir = "$INFLUX_DIR/data"
  wal-dir = "$INFLUX_DIR/wal"
  query-log-enabled = false

[monitor]
  store-enabled = false

[continuous_queries]
  enabled = false

[http]
  bind-address = "127.0.0.1:$INFLUX_PORT"
  # Every read is InfluxQL; Flux would cost ~5 s of start-up compiling its library.
  flux-enabled = false
  log-enabled = false

[logging]
  suppress-logo = true
EOF
}

start() {
	if p="$(pid)"; then
		if ping_ok; then
			echo "influxdb: already running at $url (pid $p)"
			return 0
		fi
		die "influxd (pid $p) is running but $url/ping does not answer; see $logfile or run: $0 stop"
	fi
	[[ -x $INFLUXD ]] || die "influxd not found at $INFLUXD: run \`make bin/influxd\`"
	if port_busy "$INFLUX_PORT"; then
		ping_ok && die "an InfluxDB not started by this script (no live pid in $pidfile) answers at $url; stop it or set INFLUX_PORT"
		die "port $INFLUX_PORT is taken by another process; stop it or set INFLUX_PORT"
	fi
	port_busy "$rpc_port" && die "port $rpc_port (RPC, INFLUX_PORT+2) is taken by another process; stop it or set INFLUX_PORT"

	write_config
	# Own session (setsid where present) so a Ctrl-C in the calling terminal, or in
	# `make run`, doesn't stop it. A background job of a script is not a process group
	# leader, so setsid does not fork and $! is influxd's pid.
	local launcher=()
	command -v setsid >/dev/null && launcher=(setsid)
	"${launcher[@]}" nohup "$INFLUXD" run -config "$conffile" >>"$logfile" 2>&1 </dev/null &
	local p=$!
	echo "$p" >"$pidfile"
	echo "influxdb: starting $INFLUXD (pid $p), log $logfile"

	# With Flux off influxd answers /ping within a second; the deadline is for a loaded machine.
	local deadline=$((SECONDS + 30))
	until ping_ok; do
		if ! kill -0 "$p" 2>/dev/null; then
			rm -f "$pidfile"
			tail -n 5 "$logfile" >&2 || true
			die "influxd exited during startup; see $logfile"
		fi
		if ((SECONDS >= deadline)); then
			tail -n 5 "$logfile" >&2 || true
			stop >/dev/null
			die "influxd did not answer $url/ping within 30 s; see $logfile"
		fi
		sleep 0.2
	done

	local out
	out="$(curl -sS --max-time 10 -XPOST "$url/query" --data-urlencode 'q=CREATE DATABASE telemetry')" ||
		die "create database telemetry: curl failed"
	[[ $out != *'"error"'* ]] || die "create database telemetry: $out"
	echo "influxdb: ready at $url (bucket telemetry/autogen)"
}

stop() {
	local p
	if ! p="$(pid)"; then
		rm -f "$pidfile"
		echo "influxdb: not running"
		return 0
	fi
	kill -TERM "$p" 2>/dev/null || true
	local i
	for ((i = 0; i < 150; i++)); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$p" 2>/dev/null; then
		echo "influxdb: pid $p still running after 15 s, killing it" >&2
		kill -KILL "$p" 2>/dev/null || true
	fi
	rm -f "$pidfile"
	echo "influxdb: stopped (pid $p)"
}

status() {
	local p
	if p="$(pid)" && ping_ok; then
		echo "$url"
		return 0
	fi
	if [[ -n ${p:-} ]]; then
		echo "influxdb: pid $p is running but $url/ping does not answer" >&2
	else
		echo "influxdb: not running" >&2
	fi
	return 1
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
*)
	echo "usage: $0 start|stop|status" >&2
	exit 2
	;;
esac
