#!/usr/bin/env bash
# The PostgreSQL-facing integration tests again on PostgreSQL 17 (server, client tools and
# pgvector as Debian trixie builds them; the job image's major), after `npm test` ran them
# on the host's 15. Called by `npm test`; alone: `bash scripts/test-pg-majors.sh [17]`.
#
# What changes for the tests: a private 17 server (its own port, trust auth) stands in
# for the machine's 5432 (OPS_TEST_PG_URL), 17's tools come first on PATH (pg_dump,
# pg_restore, psql, pg_basebackup as opsctl finds them), the tests' own servers are 17
# (OPS_TEST_PG_BINDIR), opsctl finds 17's pg_ctl / pg_verifybackup by the data's major
# (OPS_PG_SERVER_DIRS, no OPS_PG_CTL), and every seed database carries a vector(1536)
# column with an HNSW index (OPS_TEST_REQUIRE_VECTOR).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
major="${1:-17}"
bindir="$(bash "$root/scripts/pg-majors.sh" | awk -v m="$major" '$1 == m { print $2 }')"
[ -n "$bindir" ] || { echo "test-pg-majors: no PostgreSQL $major from scripts/pg-majors.sh" >&2; exit 1; }

tmp="${TMPDIR:-/tmp}"
dir="$(mktemp -d "$tmp/ops-pg$major-matrix.XXXXXX")"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" -eq 0 ] && chown postgres "$dir"
stop() {
  as_pg "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT
as_pg "$bindir/initdb" -D "$dir/data" -A trust -U postgres --no-sync >/dev/null
as_pg "$bindir/pg_ctl" -D "$dir/data" -w -l "$dir/log" -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
echo "test-pg-majors: PostgreSQL $major on 127.0.0.1:$port ($("$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -Atc 'show server_version'))" >&2

export OPS_TEST_PG_URL="postgresql://postgres@127.0.0.1:$port/postgres"
export OPS_TEST_PG_BINDIR="$bindir"
export OPS_TEST_REQUIRE_VECTOR=1
export OPS_PG_SERVER_DIRS="$(dirname "$(dirname "$bindir")")"
export PATH="$bindir:$PATH"
export OPS_TEST_PG_MAJOR="$major"
# Backup, verify (both readers), restore, drills, point-in-time recovery end to end, partitions.
cd "$root"
bash scripts/node24.sh --import tsx --test --test-concurrency=1 \
  test/integration/postgres-backup.test.ts \
  test/integration/postgres-verify.test.ts \
  test/integration/postgres-restore.test.ts \
  test/integration/restore-safety.test.ts \
  test/integration/drills.test.ts \
  test/integration/pitr.test.ts \
  test/integration/pitr-targets.test.ts \
  test/integration/pitr-privileges.test.ts \
  test/integration/wal-receive.test.ts \
  test/integration/partitions.test.ts \
  test/integration/pg-majors.test.ts
