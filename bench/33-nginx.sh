#!/usr/bin/env bash
# Requests/s through nginx with lbkit's Lua balancer next to nginx's plain round robin (same
# nginx, same backends, interleaved), and the time from an lbagent saying "down" to nginx
# routing no new traffic to its node, with the Lua module and with lbadapter watch.
# Loopback only (127.0.0.1-4); the Go program stops everything it started. Bounded: < 3 min.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x bin/lbagent ] && [ -x bin/lbadapter ] || go build -o bin/ ./cmd/lbagent ./cmd/lbadapter
command -v wrk >/dev/null || { echo "bench/33-nginx.sh: wrk not installed" >&2; exit 1; }
timeout 175 go run ./bench/nginxbench -lbagent bin/lbagent -lbadapter bin/lbadapter -rounds 3 -d 5s -downs 3
