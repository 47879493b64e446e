#!/bin/sh
# Starts Mosquitto in docker-compose.yml. The mqtt-acl service has written
# /mosquitto/auth/acl.conf from the registry before this runs; here the
# platform's own user gets its password (MQTT_PLATFORM_USER, and the Docker
# secret MQTT_PLATFORM_PASSWORD_FILE) in the password file, which also holds
# the devices' passwords added at provisioning and is kept across restarts.
#
# The 8883 listener serves the certificate Caddy holds for MQTT_TLS_HOST
# (caddy-data volume, read-only on /caddy-data): it is copied to
# /mosquitto/tls for the mosquitto user, and checked again every
# TLS_CHECK_SECONDS; a renewed one is copied and Mosquitto reloads it on
# SIGHUP (Caddy's own CA renews its certificates within a day, Let's
# Encrypt's within two months).
set -eu
# The image's paths; a test runs this script on its own directories.
: "${MOSQUITTO_DIR:=/mosquitto}"
: "${CADDY_DATA:=/caddy-data}"
: "${MOSQUITTO_BIN:=/usr/sbin/mosquitto}"
auth=$MOSQUITTO_DIR/auth
tls=$MOSQUITTO_DIR/tls
: "${MQTT_PLATFORM_USER:=proactive}"
: "${MQTT_PLATFORM_PASSWORD_FILE:?MQTT_PLATFORM_PASSWORD_FILE is not set}"
: "${MQTT_TLS_HOST:=localhost}"
: "${TLS_WAIT_SECONDS:=120}"
: "${TLS_CHECK_SECONDS:=600}"
if [ ! -f "$auth/acl.conf" ]; then
	echo "entrypoint: $auth/acl.conf is missing: run the mqtt-acl service (docker compose run --rm mqtt-acl)" >&2
	exit 1
fi
[ -f "$auth/passwd" ] || touch "$auth/passwd"
mosquitto_passwd -b "$auth/passwd" "$MQTT_PLATFORM_USER" "$(cat "$MQTT_PLATFORM_PASSWORD_FILE")"
chown mosquitto:mosquitto "$auth/passwd" "$MOSQUITTO_DIR/data"
chmod 0600 "$auth/passwd"

# The newest certificate Caddy holds for the host, whichever issuer.
find_cert() {
	find "$CADDY_DATA/caddy/certificates" -name "$MQTT_TLS_HOST.crt" 2>/dev/null | while read -r crt; do
		[ -f "${crt%.crt}.key" ] && echo "$(stat -c %Y "$crt") $crt"
	done | sort -rn | head -n 1 | cut -d' ' -f2-
}
# copy_cert copies the certificate and its key when they changed, and
# reports whether they did.
copy_cert() {
	crt=$(find_cert)
	[ -n "$crt" ] || return 1
	if [ -f "$tls/cert.pem" ] && cmp -s "$crt" "$tls/cert.pem"; then
		return 1
	fi
	mkdir -p "$tls"
	cp "$crt" "$tls/cert.pem.new" && cp "${crt%.crt}.key" "$tls/key.pem.new"
	chown mosquitto:mosquitto "$tls/cert.pem.new" "$tls/key.pem.new"
	chmod 0600 "$tls/key.pem.new"
	mv "$tls/key.pem.new" "$tls/key.pem" && mv "$tls/cert.pem.new" "$tls/cert.pem"
}

waited=0
until copy_cert || [ -f "$tls/cert.pem" ]; do
	if [ "$waited" -ge "$TLS_WAIT_SECONDS" ]; then
		echo "entrypoint: no certificate for $MQTT_TLS_HOST from Caddy after ${waited}s (is PUBLIC_HOST reachable on 443? docker compose logs caddy)" >&2
		exit 1
	fi
	sleep 2
	waited=$((waited + 2))
done

"$MOSQUITTO_BIN" -c "$MOSQUITTO_DIR/config/mosquitto.conf" &
pid=$!
# Stop the way docker stops us, so that Mosquitto saves its store on the way out.
stopping=
trap 'stopping=1; kill -TERM "$pid" 2>/dev/null || true' TERM INT
while [ -z "$stopping" ] && kill -0 "$pid" 2>/dev/null; do
	sleep "$TLS_CHECK_SECONDS" &
	wait $! 2>/dev/null || true
	if [ -z "$stopping" ] && copy_cert; then
		echo "entrypoint: certificate for $MQTT_TLS_HOST renewed; reloading" >&2
		kill -HUP "$pid" 2>/dev/null || true
	fi
done
wait "$pid"
