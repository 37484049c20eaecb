#!/usr/bin/env bash
# Installs the Node client's npm packages (protobufjs, protobufjs-cli, typescript; pinned by
# clients/node/package-lock.json) into clients/node/node_modules, where `npm test` (ctest: clients_node)
# finds them. The Python client needs nothing beyond scripts/install-deps.sh (python3-protobuf, protoc).
# Idempotent: nothing is fetched when node_modules was installed from the same lock file.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-node.sh
dir=clients/node
stamp=$dir/node_modules/.aitw-package-lock.json
if [ -f "$stamp" ] && cmp -s "$dir/package-lock.json" "$stamp"; then
  echo "install-clients: npm packages present in $dir/node_modules"
  exit 0
fi
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
cp "$dir/package-lock.json" "$stamp"
echo "install-clients: npm packages installed in $dir/node_modules"
