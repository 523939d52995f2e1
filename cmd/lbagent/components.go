package main

import "github.com/xroad-lb/lbkit/agent"

// componentBuilder builds one optional part of the daemon from the configuration; it returns
// nils when the part is not enabled on this node.
type componentBuilder func(cfg agent.Config, log zerologLogger) (*agent.Component, wiring, error)

// componentBuilders lists the daemon's optional parts (config sync, replication watch,
// agent-check port, push). Each lives in its own file.
var componentBuilders = []componentBuilder{}
