#!/usr/bin/env bash
# Installs CongoDB (the in-memory MongoDB-wire server inside npm @push.rocks/smartmongo 2.2.0) into DIR
# (default build/congodb), where the history tests start it on loopback. Idempotent.
# The package's own `npm install` fails on a missing dependency version, so its runtime dependencies are
# installed from tests/congodb/package-lock.json and the packed package is unpacked beside them, checked
# against the digest below.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-build/congodb}
pkg=@push.rocks/smartmongo@2.2.0
tgz=push.rocks-smartmongo-2.2.0.tgz
sha256=1f9915eb73859a62183e589a699f58b9fd006c972deb5ce6f61fa945defbc22e
bash scripts/install-node.sh
mkdir -p "$dest"
if [ -f "$dest/node_modules/@push.rocks/smartmongo/dist_ts/congodb/index.js" ] &&
  cmp -s tests/congodb/package-lock.json "$dest/package-lock.json" && cmp -s tests/congodb/congodb.mjs "$dest/congodb.mjs"; then
  echo "install-congodb: CongoDB present in $dest"
  exit 0
fi
cp tests/congodb/package.json tests/congodb/package-lock.json tests/congodb/congodb.mjs "$dest/"
(cd "$dest" && npm ci --no-audit --no-fund --loglevel=error)
(cd "$dest" && rm -f "$tgz" && npm pack "$pkg" --loglevel=error > /dev/null)
echo "$sha256  $dest/$tgz" | sha256sum -c --quiet - || { echo "install-congodb: $tgz digest mismatch" >&2; exit 1; }
rm -rf "$dest/node_modules/@push.rocks/smartmongo"
mkdir -p "$dest/node_modules/@push.rocks/smartmongo"
tar xzf "$dest/$tgz" -C "$dest/node_modules/@push.rocks/smartmongo" --strip-components=1
rm -f "$dest/$tgz"
echo "install-congodb: CongoDB ($pkg) in $dest"
