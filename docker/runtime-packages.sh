#!/bin/sh
# petal-runtime-packages BINARY...: the Debian packages that provide the shared
# libraries the binaries load (ldd, then dpkg -S), one name per line, sorted.
# The Dockerfile's runtime stages install exactly these. Fails (status 1) when
# a library is missing or belongs to no package, so an image can never miss a
# library silently.
set -u
if [ $# -eq 0 ]; then
  echo "usage: $0 BINARY..." >&2
  exit 2
fi
status=0
libs=$(mktemp)
for bin in "$@"; do
  if [ ! -x "$bin" ]; then
    echo "$0: $bin is not an executable" >&2
    status=1
    continue
  fi
  # "libx.so.1 => /path/libx.so.1 (0x...)"; "not found" when unresolved.
  out=$(ldd "$bin") || { echo "$0: ldd $bin failed" >&2; status=1; continue; }
  echo "$out" | while read -r name arrow path _; do
    if [ "$arrow" = "=>" ] && [ "$path" = "not" ]; then
      echo "$0: $bin needs $name, which is not installed" >&2
      echo "MISSING $name"
    elif [ "$arrow" = "=>" ] && [ -n "$path" ]; then
      echo "$path"
    fi
  done >> "$libs"
done
if grep -q '^MISSING ' "$libs"; then status=1; fi
pkgs=$(mktemp)
for path in $(grep -v '^MISSING ' "$libs" | sort -u); do
  # dpkg knows a file by the path its package installed; with /usr merged,
  # /lib/x and /usr/lib/x are the same file, and alternatives are symlinks.
  real=$(readlink -f "$path")
  pkg=""
  for candidate in "$path" "$real" "/usr$path" "/usr$real" "${path#/usr}" "${real#/usr}"; do
    pkg=$(dpkg-query -S "$candidate" 2>/dev/null | grep -v '^diversion' | head -n 1 | cut -d: -f1)
    [ -n "$pkg" ] && break
  done
  if [ -z "$pkg" ]; then
    echo "$0: no Debian package provides $path" >&2
    status=1
    continue
  fi
  echo "$pkg" >> "$pkgs"
done
sort -u "$pkgs"
rm -f "$libs" "$pkgs"
exit $status
