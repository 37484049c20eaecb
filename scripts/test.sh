#!/usr/bin/env bash
# Quick start, command 2: install, build (warnings are errors), and run every test with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
# The S3 registry tests run against s3rver (npm) on loopback; it lives in build/s3rver.
bash scripts/install-s3rver.sh build/s3rver
# The Node client's suite (ctest: clients_node, label `clients`) needs its npm packages in clients/node.
bash scripts/install-clients.sh
# The MongoDB history tests run against CongoDB (npm) on loopback; it lives in build/congodb.
bash scripts/install-congodb.sh build/congodb
# libmongoc (linked into aitw) creates /dev/shm/mongoc-PID for its statistics counters when a process starts and
# warns on stderr when a file of that name is left over from a killed process whose PID is reused (pid_max is
# often 32768, and the fault tests kill workers): the CLI tests that count stderr lines then fail at random.
# The counters only feed mongoc-stat; tests run without them.
export MONGOC_DISABLE_SHM=1
cd build
ctest --output-on-failure --timeout 1200 -j "$(nproc)" "$@"
