// Package agentcheck answers HAProxy's agent-check: one line per TCP connection, rendered from
// the node's verdict, and the same line for the health port's /lb.
//
// # The line
//
//	healthy      up [N%]              (N% only when a weight is configured or dynamic)
//	unhealthy    down #<reason>       (the first failing check's message, as on the health port)
//	maintenance  drain                (or maint, with maintenance-word = maint)
//
// # Never undo an operator
//
// HAProxy's agent word "ready" clears the same admin flags that an operator sets with
// "set server b/s state drain|maint". An agent that always says "ready" would lift an
// operator's drain at its next interval, so this agent says "ready" only to lift a drain or
// maint that it announced itself. The state machine:
//
//	          maintenance
//	Idle ──────────────────────► Announced ◄───────────┐
//	 ▲   (say drain|maint)        │ (say drain|maint)   │ maintenance again
//	 │                            │ maintenance ends    │
//	 │  ReadyFor has passed       ▼                     │
//	 └────────────────────────── Lifting ───────────────┘
//	                             (say "ready" with up / down #reason)
//
// In Idle the line carries no admin word at all, whatever HAProxy's admin state is, so an
// operator's drain or maint set through the runtime API stays in place for as long as the
// operator wants. "ready" is repeated for ReadyFor (default 10 s, five agent-inter periods)
// after maintenance ends, so that every HAProxy polling this agent (several balancers, or
// several backends of one balancer) hears it at least once. When StateFile is set, Announced
// survives a restart of the daemon: after a restart the agent still lifts its own drain,
// and still never lifts one it did not announce.
//
// The transitions depend only on the verdict and the clock, never on who asks, so the TCP
// port and /lb always give the same answer.
package agentcheck
