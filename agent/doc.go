// Package agent is the lbagent daemon: it reads the node's X-Road files, runs the checks in
// the background, keeps the verdict, and serves the health port and the admin port. Other
// parts (agent-check port, config sync, replication watch) plug in as components.
package agent
