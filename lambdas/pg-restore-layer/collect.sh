#!/usr/bin/env bash
# Copies the binaries and the libraries ldd resolves for them into a layer tree, then
# proves the tree is complete: the build fails if any library is missing.
set -euo pipefail
out="$1"
mkdir -p "$out/bin" "$out/lib"
for tool in pg_restore zstd; do
  cp -L "$(command -v "$tool")" "$out/bin/$tool"
done
# Libraries the runtime image already has (glibc and friends) are left out.
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so)'
for bin in "$out"/bin/*; do
  ldd "$bin" | awk '/=> \// { print $1, $3 }' | while read -r name path; do
    if ! [[ "$name" =~ $skip ]]; then cp -Ln "$path" "$out/lib/$name"; fi
  done
done
# The check: with only the layer's libraries added, nothing is "not found" and both run.
for bin in "$out"/bin/*; do
  if LD_LIBRARY_PATH="$out/lib" ldd "$bin" | grep -q 'not found'; then
    echo "missing libraries for $bin:" >&2
    LD_LIBRARY_PATH="$out/lib" ldd "$bin" | grep 'not found' >&2
    exit 1
  fi
done
LD_LIBRARY_PATH="$out/lib" "$out/bin/pg_restore" --version
LD_LIBRARY_PATH="$out/lib" "$out/bin/zstd" --version
