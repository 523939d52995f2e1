#!/usr/bin/env bash
# Issue 2: lbagent's health port vs nginx `return 200` (wrk, keep-alive and Connection: close),
# and the serverconf query rate at two probe rates. Prints a Markdown section.
set -euo pipefail
cd "$(dirname "$0")/.."
go run ./bench/healthbench
