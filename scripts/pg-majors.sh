#!/usr/bin/env bash
# Real PostgreSQL 17 and 18 (server and client tools, as Debian builds them) beside the
# host's 15, for the test matrix (scripts/test-pg-majors.sh) and the differential tests.
#
# Debian bookworm has no 16+; its archive serves trixie (17, pgvector) and sid (18), made
# here with `debootstrap` into a folder (about 100 s each, cached outside the clone and
# rebuilt when missing). Their binaries need trixie's glibc, so each tool runs through its
# own root's dynamic loader (`ld.so --library-path ROOT/... --argv0 SHIM`): no chroot, so
# the paths a test hands a tool are the host's, a server's archive_command runs the host's
# opsctl, and PostgreSQL finds its share and lib directories relative to the shim (they
# are symlinks into the root). Prints `MAJOR BINDIR` per major, e.g. `17 /var/cache/.../bin`.
#
#   bash scripts/pg-majors.sh            # builds what is missing, prints the bin dirs
#   OPS_PG_MAJORS_DIR=/elsewhere bash scripts/pg-majors.sh
set -euo pipefail
cache="${OPS_PG_MAJORS_DIR:-/var/cache/ops-automation}"
mirror="${OPS_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

build_root() { # suite packages... -> $cache/<suite>-root
  local suite="$1"; shift
  local root="$cache/$suite-root"
  local want="$*"
  if [ -f "$root/.ops-complete" ] && [ "$(cat "$root/.ops-complete")" = "$want" ]; then return; fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "pg-majors: $root is missing; building it needs root (debootstrap): sudo bash scripts/pg-majors.sh" >&2
    exit 1
  fi
  command -v debootstrap >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
  mkdir -p "$cache"
  rm -rf "$root.tmp" "$root"
  echo "pg-majors: debootstrap $suite ($want) into $root (about 100 s, once per machine)" >&2
  local inc; inc="$(echo "$want" | tr ' ' ',')"
  if ! debootstrap --variant=minbase --include="$inc" "$suite" "$root.tmp" "$mirror" > "$cache/$suite.log" 2>&1; then
    echo "pg-majors: debootstrap $suite failed; its log: $cache/$suite.log" >&2
    tail -n 20 "$cache/$suite.log" >&2
    exit 1
  fi
  echo "$want" > "$root.tmp/.ops-complete"
  mv "$root.tmp" "$root"
}

make_shims() { # root major -> $cache/pg<major> (bin/, and the share and lib links PostgreSQL derives from its own path)
  local root="$1" major="$2"
  local shim="$cache/pg$major"
  local real="$root/usr/lib/postgresql/$major"
  [ -x "$real/bin/postgres" ] || { echo "pg-majors: $real/bin/postgres is missing" >&2; exit 1; }
  rm -rf "$shim.tmp"
  mkdir -p "$shim.tmp/usr/lib/postgresql/$major/bin" "$shim.tmp/usr/share/postgresql"
  ln -s "$real/lib" "$shim.tmp/usr/lib/postgresql/$major/lib"
  ln -s "$root/usr/share/postgresql/$major" "$shim.tmp/usr/share/postgresql/$major"
  local libs="$root/usr/lib/x86_64-linux-gnu"
  for tool in "$real"/bin/*; do
    local name; name="$(basename "$tool")"
    cat > "$shim.tmp/usr/lib/postgresql/$major/bin/$name" <<EOF
#!/bin/sh
exec "$root/usr/lib64/ld-linux-x86-64.so.2" --library-path "$libs" --argv0 "\$0" "$tool" "\$@"
EOF
    chmod 0755 "$shim.tmp/usr/lib/postgresql/$major/bin/$name"
  done
  chmod -R go+rX "$shim.tmp"
  rm -rf "$shim"
  mv "$shim.tmp" "$shim"
  "$shim/usr/lib/postgresql/$major/bin/pg_dump" --version | grep -q "PostgreSQL) $major\." || { echo "pg-majors: pg_dump $major does not run through its shim" >&2; exit 1; }
  echo "$major $shim/usr/lib/postgresql/$major/bin"
}

build_root trixie postgresql-17 postgresql-17-pgvector zstd
build_root sid postgresql-18 zstd
chmod 0755 "$cache"
make_shims "$cache/trixie-root" 17
make_shims "$cache/sid-root" 18
