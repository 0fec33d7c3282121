#!/usr/bin/env bash
# Produces lambdas/pg-restore-layer/pg-restore-layer.zip. Needs Docker (BuildKit); run
# it on a machine that has it, then name the zip in the stage file
# ("pgRestoreLayer": { "asset": "lambdas/pg-restore-layer/pg-restore-layer.zip" }) or
# publish it and give its ARN ({ "arn": ... }). See doc/deploy.md, step 2.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
docker build --platform "${PLATFORM:-linux/arm64}" --build-arg "PG_MAJOR=${PG_MAJOR:-$(sed -n 's/^export const PG_MAJOR = \([0-9]*\);/\1/p' "$here/../../cdk/versions.ts")}" --output "type=local,dest=$out" "$here"
test -x "$out/bin/pg_restore" && test -x "$out/bin/zstd"
(cd "$out" && zip -qr "$here/pg-restore-layer.zip" bin lib)
echo "wrote $here/pg-restore-layer.zip"
