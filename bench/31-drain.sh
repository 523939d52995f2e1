#!/usr/bin/env bash
# Time from `lbadapter drain --no-wait` to HAProxy showing DRAIN (anchor: the same runtime API
# command sent with socat), and from a failing check to HAProxy DOWN with and without push.
# Loopback only (127.0.0.1-4); the Go program stops everything it started. Bounded: < 3 min.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x bin/lbagent ] && [ -x bin/lbadapter ] || go build -o bin/ ./cmd/lbagent ./cmd/lbadapter
command -v socat >/dev/null || { echo "bench/31-drain.sh: socat not installed" >&2; exit 1; }
timeout 175 go run ./bench/drainbench -lbagent bin/lbagent -lbadapter bin/lbadapter -drains 20 -failures 3
