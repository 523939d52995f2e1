#!/usr/bin/env bash
# Time from `lbadapter drain --no-wait` to an ELBv2 target group (the local endpoint,
# testenv/elbv2) showing the target draining, next to the same command against HAProxy, and
# CPU time and peak RSS of one `lbadapter status` per balancer, all in one run.
# Loopback only (127.0.0.1-4); the Go program stops everything it started. Bounded: < 3 min.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x bin/lbagent ] && [ -x bin/lbadapter ] || go build -o bin/ ./cmd/lbagent ./cmd/lbadapter
timeout 175 go run ./bench/awsbench -lbagent bin/lbagent -lbadapter bin/lbadapter -drains 20 -statuses 10
