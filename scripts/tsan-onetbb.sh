#!/usr/bin/env bash
# Builds libtbb.so.12 with ThreadSanitizer from Debian's own source of the installed libtbb12 (same version,
# same Debian patches), into DEST/lib (default build-tsan/onetbb/lib); scripts/sanitizers.sh runs the TSan
# suites with it first on LD_LIBRARY_PATH, so that aitw and OpenCV both use it.
#
# Why: TSan only sees the synchronisation of instrumented code. With Debian's uninstrumented libtbb, every
# hand-off through TBB's scheduler (spawn, steal, wait) is invisible, and the flow graph's tasks, their
# Job*, TBB's own task objects and whatever a task touched are all reported as races (hundreds per
# pipeline test). Instrumented, the scheduler's atomics are seen like ours. Only libtbb is built: without
# libtbbmalloc beside it, this libtbb allocates with malloc, which TSan tracks (it looks for the scalable
# allocator in its own directory only), so no uninstrumented allocator recycles memory between threads.
#
# Needs the deb-src entries of the Debian archive that the system already uses (added to
# /etc/apt/sources.list.d/aitw-debian-src.sources when `apt-cache showsrc` does not know the version) and
# dpkg-dev (build-essential). ~2 MB download, ~40 s to build on 2 cores. Does nothing when DEST holds a build
# of the installed version.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=$(realpath -m "${1:-build-tsan/onetbb}")
src_pkg=$(dpkg-query -W -f='${source:Package}' libtbb12)
version=$(dpkg-query -W -f='${source:Version}' libtbb12)
stamp="$src_pkg $version -fsanitize=thread -O1 -g1"
if [ -f "$dest/lib/libtbb.so.12" ] && [ "$(cat "$dest/stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "tsan-onetbb: $src_pkg $version (TSan) present in $dest/lib"
  exit 0
fi

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
# The whole output is captured first: `cmd | grep -q` under pipefail fails when grep exits early (SIGPIPE).
showsrc=$(apt-cache showsrc "$src_pkg" 2>/dev/null || true)
if ! grep -qx "Version: $version" <<<"$showsrc"; then
  echo "tsan-onetbb: adding deb-src entries for the system's Debian archive"
  list=/etc/apt/sources.list.d/aitw-debian-src.sources
  # The deb822 .sources of the system (Debian 12), with Types: deb-src.
  tmp=$(mktemp)
  for f in /etc/apt/sources.list.d/*.sources; do
    [ "$f" = "$list" ] && continue
    grep -q '^URIs: .*debian' "$f" || continue
    sed -n '/^Types:/,$p' "$f" | sed 's/^Types: deb$/Types: deb-src/' >>"$tmp"
    echo >>"$tmp"
  done
  if [ ! -s "$tmp" ] && [ -f /etc/apt/sources.list ]; then  # one-line format
    grep -E '^deb\s' /etc/apt/sources.list | grep debian | sed 's/^deb\s/deb-src /' >"$tmp"
    list=/etc/apt/sources.list.d/aitw-debian-src.list
  fi
  "${sudo[@]}" install -m 644 "$tmp" "$list"
  rm -f "$tmp"
  "${sudo[@]}" apt-get update -qq
fi

rm -rf "$dest"
mkdir -p "$dest/src"
chmod 755 "$dest" "$dest/src"  # apt fetches as _apt where it can
(cd "$dest/src" && apt-get source -qq "$src_pkg=$version" 2>&1 | grep -Ev '^(W: Download is performed unsandboxed|dpkg-source: info)' || true)
srcdir=$(find "$dest/src" -mindepth 1 -maxdepth 1 -type d -name "$src_pkg-*" -print -quit)
[ -n "$srcdir" ] || { echo "tsan-onetbb: apt-get source $src_pkg=$version failed" >&2; exit 1; }
# TBB_STRICT=OFF: GCC 12 warns (-Wtsan) that TSan does not model its standalone fences.
cmake -S "$srcdir" -B "$dest/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DTBB_SANITIZE=thread -DTBB_STRICT=OFF -DTBB_TEST=OFF \
  -DTBBMALLOC_BUILD=OFF -DTBB_DISABLE_HWLOC_AUTOMATIC_SEARCH=ON -DTBB_ENABLE_IPO=OFF >/dev/null
cmake --build "$dest/build" --parallel "$(nproc)" >/dev/null
mkdir -p "$dest/lib"
cp -P "$dest"/build/*/libtbb.so.12* "$dest/lib/"
[ -f "$dest/lib/libtbb.so.12" ] || { echo "tsan-onetbb: no libtbb.so.12 built" >&2; exit 1; }
echo "$stamp" >"$dest/stamp"
echo "tsan-onetbb: $src_pkg $version built with -fsanitize=thread into $dest/lib"
