#!/usr/bin/env bash
# Builds the release archives: one per architecture,
#   $DIST/proactive_<version>_linux_<arch>.tar.gz
# holding the static binary, README.md, LICENSE (when the repository has
# one), proactive.example.yaml, proactive.env (every setting, commented),
# the systemd unit and the example rules, under one top directory; and
# $DIST/SHA256SUMS over the archives (`sha256sum -c SHA256SUMS` checks them).
#
#   scripts/release.sh            (or `make release`)
#
# Environment:
#   VERSION  the version the binary reports (default: git describe, else dev)
#   ARCHES   the architectures (default: "amd64 arm64")
#   DIST     the output directory (default: <repo>/dist)
#   GO       the go command (default: go)
#
# The archives are reproducible: sorted names, owner root, and every mtime
# at the last commit's time (SOURCE_DATE_EPOCH overrides it).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
GO="${GO:-go}"
VERSION="${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
ARCHES="${ARCHES:-amd64 arm64}"
DIST="${DIST:-$root/dist}"
SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"

case "$VERSION" in
  *[!A-Za-z0-9._+-]*|'') echo "release: VERSION $VERSION: only letters, digits and . _ + -" >&2; exit 2 ;;
esac

mkdir -p "$DIST"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

archives=()
for arch in $ARCHES; do
  name="proactive_${VERSION}_linux_${arch}"
  dir="$work/$name"
  mkdir -p "$dir/rules"
  echo "release: building $name"
  # CGO off: the SQLite driver is pure Go, so the binary is static and
  # cross-compiles without a C toolchain; timetzdata embeds the zone
  # database (quiet hours and visit slots are in each device's zone).
  CGO_ENABLED=0 GOOS=linux GOARCH="$arch" "$GO" build -trimpath -tags timetzdata \
    -ldflags "-s -w -X main.version=$VERSION" -o "$dir/proactive" ./cmd/proactive
  cp README.md proactive.example.yaml deploy/systemd/proactive.service "$dir/"
  cp deploy/proactive.env "$dir/proactive.env"
  [ -f LICENSE ] && cp LICENSE "$dir/"
  cp rules/examples/*.yaml "$dir/rules/"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
    --format=gnu -C "$work" -cf - "$name" | gzip -n -9 > "$DIST/$name.tar.gz"
  archives+=("$name.tar.gz")
done

# SHA256SUMS lists the archives of this version; other files in $DIST
# are left alone.
(cd "$DIST" && sha256sum "${archives[@]}" > SHA256SUMS)
echo "release: $(cd "$DIST" && pwd)/SHA256SUMS"
cat "$DIST/SHA256SUMS"
