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
// maint that it announced itself, and only to the peer it announced it to. A peer is the
// remote IP of the agent-check connection (or of the HTTP client of /lb): one HAProxy.
//
//	          maintenance
//	Idle ──────────────────────► Announced ◄───────────┐
//	 ▲   (say drain|maint;        │ (say drain|maint;   │ maintenance again
//	 │    the peer is owed ready) │  owed set grows)    │ (owed set kept)
//	 │                            │ maintenance ends    │
//	 │  no peer owed any more,    ▼                     │
//	 │  or ReadyFor has passed                          │
//	 └────────────────────────── Lifting ───────────────┘
//	          (an owed peer: "ready" once, with up / down #reason, then it is owed nothing;
//	           any other peer: no admin word)
//
// In Idle, and for peers that were never told drain/maint, the line carries no admin word at
// all, whatever HAProxy's admin state is, so an operator's drain or maint set through the
// runtime API stays in place for as long as the operator wants — also when it is set right
// after the agent's own "ready". One "ready" per HAProxy is enough: the admin state is per
// server and shared by all of HAProxy's threads, and HAProxy closes the connection only after
// it read the line. So the TCP port counts "ready" as delivered once the peer has closed (or
// reset) the connection after the line; a peer that keeps it open past the linger limit is
// owed "ready" again on its next connection. /lb counts it delivered when the answer is built.
//
// A peer told drain that never comes back (a balancer removed meanwhile) is forgotten after
// ReadyFor (default 1 min), so the machine returns to Idle. /status (Status, Phase) renders
// without a peer: it neither announces nor consumes an owed "ready".
//
// Known limits: peers are told apart by IP only. Several HAProxy processes behind one source
// address, or several servers of one HAProxy polling this agent (one per backend), are one
// peer: only the first of them to ask after maintenance hears "ready"; lift the others by
// hand (lbadapter enable). HAProxy keeps one set of admin flags per server, so an operator's
// drain added while the agent's own drain is in place is cleared by the agent's "ready".
//
// # Restarts
//
// When StateFile is set, the announcement and the owed peers survive a restart of the
// daemon: the file holds the word and a "peers" line (rewritten whenever the owed set
// changes). The same file holds push's own drain (a "pushed" line); it is removed when
// neither has anything to keep (see State). After a restart the agent still lifts its own drain at exactly
// the peers it told, and never at others. A file without the peers line (written by an
// older lbagent) names no peers: then every peer gets "ready" until ReadyFor has passed.
package agentcheck
