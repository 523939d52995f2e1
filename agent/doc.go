// Package agent is the lbagent daemon: it reads the node's X-Road files, runs the checks in
// the background, keeps the verdict, and serves the health port and the admin port.
//
// Other parts (agent-check port, push, config sync, replication watch) plug in one way: New
// builds the verdict store with X-Road's checks first; a part is built for Agent.Store (and
// Agent.Limiter) as one Component (its checks, Setup, worker, /status document, collectors and
// /lb line) and added with Agent.Add before Listen. The admin port switches maintenance mode
// in the store, which persists it.
package agent
