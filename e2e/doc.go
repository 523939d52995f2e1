// Package e2e holds end-to-end tests of a whole cluster: real HAProxy, PostgreSQL and
// lbagent processes on 127.0.0.x, driven by the lbadapter binary.
package e2e
