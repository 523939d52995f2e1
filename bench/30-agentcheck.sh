#!/usr/bin/env bash
# Agent-check answers per second: lbagent's agent-check server (Go, one goroutine per
# connection) next to the classic fork-per-connection agent (socat ... fork EXEC:script, as
# with xinetd), both loaded by the same Go generator that opens a new connection per answer,
# as HAProxy does. Loopback only; everything started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${AGENT_BENCH_DURATION:-5s}
CONC=${AGENT_BENCH_CONC:-16}
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

command -v socat >/dev/null || { echo "## Agent-check answers per second"; echo; echo "_socat missing: skipped._"; exit 0; }
go build -o "$tmp/agentload" ./bench/agentload

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
waitport() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

go_port=$(freeport)
"$tmp/agentload" -serve "127.0.0.1:$go_port" & pids+=($!)
printf '#!/bin/sh\necho up\n' > "$tmp/agent.sh"; chmod +x "$tmp/agent.sh"
fork_port=$(freeport)
socat "TCP-LISTEN:$fork_port,bind=127.0.0.1,reuseaddr,fork,backlog=1024" "EXEC:$tmp/agent.sh" & pids+=($!)
waitport "$go_port"; waitport "$fork_port"

go_cmd="agentload -addr 127.0.0.1:$go_port -c $CONC -d $DUR"
fork_cmd="agentload -addr 127.0.0.1:$fork_port -c $CONC -d $DUR"
go_out=$("$tmp/agentload" -addr "127.0.0.1:$go_port" -c "$CONC" -d "$DUR" 2>&1 | tr "\n" " ")
fork_out=$("$tmp/agentload" -addr "127.0.0.1:$fork_port" -c "$CONC" -d "$DUR" 2>&1 | tr "\n" " ")
val() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2" | head -1; }

cat <<MD
## Agent-check answers per second

New TCP connection per answer (as HAProxy's agent-check), $CONC concurrent, $DUR each, loopback,
the load generator and the agent as separate processes on the same $(nproc)-core machine.

| agent | answers/s | answers | errors |
|---|---:|---:|---:|
| lbagent agent-check (Go, \`agent/agentcheck\`) | $(val per_second "$go_out") | $(val answers "$go_out") | $(val errors "$go_out") |
| anchor: fork per connection (\`socat … fork EXEC:agent.sh\`, \`echo up\`) | $(val per_second "$fork_out") | $(val answers "$fork_out") | $(val errors "$fork_out") |

HAProxy asks every 2 s per server and per balancer, so either agent has room to spare; the
difference is what a check costs the node: one goroutine versus a fork and exec of a shell.
"errors" are the generator's own connect() calls that returned \`i/o timeout\` on this
loopback at some 20,000 new connections a second: they come in bursts and vary from 0 to ~10%
between identical runs; a variant of the server that closes right after its line (no wait for
the peer) shows the same, and the fork-per-connection anchor, at ~1,000 connections a second,
does not reach that rate (it showed some in earlier runs too). Not understood yet; HAProxy opens
one connection per server every 2 s. Every answer that arrived was checked to be the expected line.
Commands (built from \`bench/agentload\`):

\`\`\`
agentload -serve 127.0.0.1:$go_port
socat TCP-LISTEN:$fork_port,bind=127.0.0.1,reuseaddr,fork,backlog=1024 EXEC:agent.sh   # agent.sh: echo up
$go_cmd
$fork_cmd
\`\`\`

Raw: \`$go_out\` / \`$fork_out\`
MD
