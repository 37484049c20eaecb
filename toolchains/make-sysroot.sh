#!/usr/bin/env bash
# Builds the Debian 12 arm64 sysroot that toolchains/aarch64-linux-gnu.cmake compiles, links and runs
# (qemu-aarch64-static -L) against:  toolchains/make-sysroot.sh [SYSROOT]   (default build-aarch64/sysroot)
#
# Why not `dpkg --add-architecture arm64 && apt-get install libopencv-dev:arm64`: the arm64 -dev packages
# conflict with the amd64 ones the native build needs. Instead a private apt (its own sources, lists and
# an empty dpkg status, so nothing on the host counts as installed) resolves the dependency closure for
# arm64 only, downloads it into SYSROOT-apt/, and `dpkg-deb -x` unpacks every package into the folder.
# No root needed, the host's dpkg database is never touched. Maintainer scripts do not run, so the few
# things they would do that linking and running need are done here: usrmerge (/lib -> usr/lib),
# absolute symlinks made relative (else the linker follows them to the host's /usr/lib), and
# update-alternatives links for shared libraries (libblas.so.3, liblapack.so.3).
#
# OpenCV: only the five modules aitw uses and their runtime closure, not the whole libopencv-dev tree (VTK,
# Qt, contrib): ~310 packages, ~165 MB of .debs, ~710 MB unpacked. libopencv-dev itself is unpacked without
# its dependencies for its CMake package files, whose import check is narrowed to the modules present.
#
# Cached: a stamp holds the hash of this script (so of its package list) and the mirrors; when it matches,
# nothing is done. The .debs stay in SYSROOT-apt/ for the next rebuild.
# Environment: AITW_DEBIAN_MIRROR (http://deb.debian.org/debian), AITW_DEBIAN_SECURITY_MIRROR
# (http://deb.debian.org/debian-security), AITW_DEBIAN_SUITE (bookworm).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
sysroot=${1:-$repo/build-aarch64/sysroot}
mkdir -p "$(dirname "$sysroot")"
sysroot=$(cd "$(dirname "$sysroot")" && pwd)/$(basename "$sysroot")
cache=$sysroot-apt
triple=aarch64-linux-gnu
mirror=${AITW_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${AITW_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
suite=${AITW_DEBIAN_SUITE:-bookworm}

# The arm64 twins of scripts/install-deps.sh's libraries, plus what the cross compiler needs from the
# target (C and C++ runtime headers and start files). OpenCV: per-module -dev packages only.
packages=(
  libc6-dev libstdc++-12-dev libgcc-12-dev
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev libopencv-dnn-dev libopencv-videoio-dev
  libeigen3-dev libtbb-dev libprotobuf-dev libcurl4-openssl-dev libssl-dev nlohmann-json3-dev libcli11-dev
  libgtest-dev libbenchmark-dev libasio-dev libcpp-httplib-dev libsqlite3-dev libmongoc-dev libbson-dev
)
# Unpacked without their dependencies.
packages_nodeps=(libopencv-dev)

key=$( { cat "$0"; echo "$mirror $security $suite"; } | sha256sum | cut -c1-16)
stamp=$sysroot/.aitw-sysroot
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; then
  echo "make-sysroot: $sysroot is up to date ($key)"
  exit 0
fi
for tool in apt-get dpkg-deb realpath sha256sum; do
  command -v "$tool" >/dev/null || { echo "make-sysroot: '$tool' not found" >&2; exit 1; }
done
[ -r /usr/share/keyrings/debian-archive-keyring.gpg ] ||
  { echo "make-sysroot: /usr/share/keyrings/debian-archive-keyring.gpg missing (apt-get install debian-archive-keyring)" >&2; exit 1; }

# --- resolve and download ------------------------------------------------------------------------------
t0=$(date +%s)
mkdir -p "$cache"/{etc/sources.list.d,etc/preferences.d,state/lists/partial,archives/partial}
: > "$cache/state/status"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
cat > "$cache/etc/sources.list" <<EOF
deb [arch=arm64 signed-by=$keyring] $mirror $suite main
deb [arch=arm64 signed-by=$keyring] $mirror $suite-updates main
deb [arch=arm64 signed-by=$keyring] $security $suite-security main
EOF
apt_opts=(
  -o Dir::Etc::sourcelist="$cache/etc/sources.list" -o Dir::Etc::sourceparts="$cache/etc/sources.list.d"
  -o Dir::Etc::preferences="$cache/etc/preferences" -o Dir::Etc::preferencesparts="$cache/etc/preferences.d"
  -o Dir::State="$cache/state" -o Dir::State::status="$cache/state/status"
  -o Dir::Cache="$cache" -o Dir::Cache::archives="$cache/archives"
  -o APT::Architecture=arm64 -o APT::Architectures::=arm64
  -o APT::Install-Recommends=false -o APT::Install-Suggests=false
  -o Debug::NoLocking=true -o APT::Sandbox::User="$(id -un)"
)
echo "make-sysroot: apt-get update (arm64, $suite)"
apt-get "${apt_opts[@]}" -qq update
echo "make-sysroot: downloading the arm64 closure of: ${packages[*]}"
# With an empty dpkg status everything counts as missing: --download-only fetches the whole closure.
apt-get "${apt_opts[@]}" -qq -y install --download-only "${packages[@]}" >/dev/null
(cd "$cache/archives" && apt-get "${apt_opts[@]}" -qq download "${packages_nodeps[@]}")
# The file names of this closure (the archive cache survives across runs and may hold older versions);
# --print-uris lists only what is not in the archive cache, hence an empty one.
mkdir -p "$cache/none/partial"
wanted=$(apt-get "${apt_opts[@]}" -o Dir::Cache::archives="$cache/none" -qq -y install --print-uris \
  "${packages[@]}" | awk '{print $2}')
for p in "${packages_nodeps[@]}"; do
  wanted+=$'\n'$(apt-get "${apt_opts[@]}" -qq download --print-uris "$p" | awk '{print $2}')
done
debs=()
while IFS= read -r f; do
  [ -n "$f" ] || continue
  [ -f "$cache/archives/$f" ] || { echo "make-sysroot: $f was not downloaded" >&2; exit 1; }
  debs+=("$cache/archives/$f")
done <<<"$wanted"
t1=$(date +%s)
echo "make-sysroot: ${#debs[@]} packages, $(du -shc "${debs[@]}" | tail -1 | cut -f1) (resolve + download $((t1 - t0)) s)"

# --- unpack --------------------------------------------------------------------------------------------
tmp=$sysroot.tmp
rm -rf "$tmp"
mkdir -p "$tmp"
for deb in "${debs[@]}"; do dpkg-deb -x "$deb" "$tmp"; done

# usrmerge, as Debian 12 installs are: /bin /sbin /lib* are links into /usr (the loader qemu asks for is
# /lib/ld-linux-aarch64.so.1; libc.so's linker script names /lib/aarch64-linux-gnu/libc.so.6).
for d in bin sbin lib lib64; do
  if [ -d "$tmp/$d" ] && [ ! -L "$tmp/$d" ]; then
    mkdir -p "$tmp/usr/$d"
    cp -a "$tmp/$d/." "$tmp/usr/$d/"
    rm -rf "${tmp:?}/$d"
  fi
  [ -e "$tmp/$d" ] || [ ! -d "$tmp/usr/$d" ] || ln -s "usr/$d" "$tmp/$d"
done

# Absolute symlinks point at the host once the tree is not /: make them relative to the sysroot.
while IFS= read -r -d '' link; do
  target=$(readlink "$link")
  ln -sfn "$(realpath -s -m --relative-to="$(dirname "$link")" "$tmp$target")" "$link"
done < <(find "$tmp" -type l -lname '/*' -print0)

# Shared-library alternatives (libblas.so.3 -> blas/libblas.so.3, ...) from the postinst scripts.
for deb in "${debs[@]}"; do
  dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./postinst 2>/dev/null |
    sed -e ':a' -e '/\\$/N; s/\\\n//; ta' |
    awk '$1 == "update-alternatives" && $2 == "--install" { print $3, $5 }' || true
done | while read -r link path; do
  case $link in /usr/lib/$triple/*) ;; *) continue ;; esac
  if [ ! -e "$tmp$link" ] && [ -e "$tmp$path" ]; then
    ln -sfn "$(realpath -s -m --relative-to="$(dirname "$tmp$link")" "$tmp$path")" "$tmp$link"
  fi
done

# libopencv-dev's CMake files import all ~55 modules and fail on the first missing library: check only
# the modules whose libraries are here.
modules=$tmp/usr/lib/$triple/cmake/opencv4/OpenCVModules-release.cmake
for lib in $(sed -n 's/^list(APPEND _cmake_import_check_targets \(opencv_[a-z0-9_]*\) )$/\1/p' "$modules"); do
  if [ ! -e "$tmp/usr/lib/$triple/lib$lib.so" ]; then
    sed -i "/^list(APPEND _cmake_import_check_targets $lib )\$/d" "$modules"
  fi
done

# Every library aitw links must find its DT_NEEDED closure inside the sysroot.
readelf=$(command -v $triple-readelf || command -v readelf)
missing=()
declare -A seen=()
queue=(libopencv_core.so.406 libopencv_imgproc.so.406 libopencv_imgcodecs.so.406 libopencv_dnn.so.406
       libopencv_videoio.so.406 libtbb.so.12 libprotobuf.so.32 libcurl.so.4 libssl.so.3 libbenchmark.so.1debian
       libstdc++.so.6 libc.so.6)
while [ ${#queue[@]} -gt 0 ]; do
  lib=${queue[0]}
  queue=("${queue[@]:1}")
  [ -z "${seen[$lib]:-}" ] || continue
  seen[$lib]=1
  file=$tmp/usr/lib/$triple/$lib
  [ -e "$file" ] || file=$tmp/usr/lib/$lib
  [ -e "$file" ] || { missing+=("$lib"); continue; }
  for dep in $("$readelf" -d "$file" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    [ "$dep" = ld-linux-aarch64.so.1 ] || queue+=("$dep")
  done
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "make-sysroot: libraries missing from the sysroot: ${missing[*]}" >&2
  exit 1
fi

echo "$key" > "$tmp/.aitw-sysroot"
rm -rf "$sysroot"
mv "$tmp" "$sysroot"
t2=$(date +%s)
echo "make-sysroot: $sysroot ready: $(du -sh "$sysroot" | cut -f1), ${#seen[@]} libraries checked (unpack $((t2 - t1)) s)"
