#!/usr/bin/env bash
# lbadapter upgrade on a loopback 3-node cluster (replication, config sync, sshd per node,
# HAProxy and nginx in front) under client traffic: total time vs the sum of its steps' waits,
# per-node drain time and downtime, failed connections. Needs root (sshd). Bounded: < 10 min.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x bin/lbagent ] && [ -x bin/lbadapter ] || go build -o bin/ ./cmd/lbagent ./cmd/lbadapter
timeout 580 go run ./e2e/upgradebench -lbagent bin/lbagent -lbadapter bin/lbadapter
