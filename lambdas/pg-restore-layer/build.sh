#!/usr/bin/env bash
# Produces lambdas/pg-restore-layer/pg-restore-layer.zip. Needs Docker (BuildKit); run
# it on a machine that has it, then deploy with -c pgRestoreLayerZip=<path> (or give an
# existing layer's ARN with -c pgRestoreLayerArn=...). See doc/deploy.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
docker build --platform "${PLATFORM:-linux/arm64}" --build-arg "PG_MAJOR=${PG_MAJOR:-17}" --output "type=local,dest=$out" "$here"
test -x "$out/bin/pg_restore" && test -x "$out/bin/zstd"
(cd "$out" && zip -qr "$here/pg-restore-layer.zip" bin lib)
echo "wrote $here/pg-restore-layer.zip"
