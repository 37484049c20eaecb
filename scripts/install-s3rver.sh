#!/usr/bin/env bash
# Installs s3rver (an S3-protocol server from npm, pinned by tests/s3rver/package-lock.json) into
# build/s3rver, where the registry integration tests start it on loopback. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-build/s3rver}
bash scripts/install-node.sh
mkdir -p "$dest"
if [ -f "$dest/node_modules/s3rver/bin/s3rver.js" ] && cmp -s tests/s3rver/package-lock.json "$dest/package-lock.json"; then
  echo "install-s3rver: s3rver present in $dest"
  exit 0
fi
cp tests/s3rver/package.json tests/s3rver/package-lock.json "$dest/"
(cd "$dest" && npm ci --no-audit --no-fund --loglevel=error)
echo "install-s3rver: s3rver $(node -p "require('./$dest/node_modules/s3rver/package.json').version") in $dest"
