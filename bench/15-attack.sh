#!/usr/bin/env bash
# Issue 8: balancer probes (a new connection each, as HAProxy) against lbagent's health and
# agent-check ports while each attack runs, next to the idle baseline and to nginx under the
# same attack, in the same run. Loopback only; everything started is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
go run ./bench/attackbench -probes "${ATTACK_BENCH_PROBES:-200}"
