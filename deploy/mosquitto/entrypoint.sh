#!/bin/sh
# Starts Mosquitto in docker-compose.yml. The mqtt-acl service has written
# /mosquitto/auth/acl.conf from the registry before this runs; here the
# platform's own user gets its password (MQTT_PLATFORM_USER,
# MQTT_PLATFORM_PASSWORD) in the password file, which also holds the
# devices' passwords added at provisioning and is kept across restarts.
set -eu
auth=/mosquitto/auth
: "${MQTT_PLATFORM_USER:=proactive}"
: "${MQTT_PLATFORM_PASSWORD:?MQTT_PLATFORM_PASSWORD is not set}"
if [ ! -f "$auth/acl.conf" ]; then
	echo "entrypoint: $auth/acl.conf is missing: run the mqtt-acl service (docker compose run --rm mqtt-acl)" >&2
	exit 1
fi
[ -f "$auth/passwd" ] || touch "$auth/passwd"
mosquitto_passwd -b "$auth/passwd" "$MQTT_PLATFORM_USER" "$MQTT_PLATFORM_PASSWORD"
chown mosquitto:mosquitto "$auth/passwd" /mosquitto/data
chmod 0600 "$auth/passwd"
exec /usr/sbin/mosquitto -c /mosquitto/config/mosquitto.conf
