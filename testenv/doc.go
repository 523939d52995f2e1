// Package testenv starts real programs (PostgreSQL, HAProxy, nginx, OpenSSH) and writes
// X-Road-shaped node files, for the tests and for `make demo`.
//
// Everything it starts listens on loopback only and is stopped and removed by Close (or by
// the test's Cleanup). Programs come from Debian's packages, installed by
// scripts/install-deps.sh. When a program is missing, Require skips the test, except under
// CI=true, where a missing program fails the test.
package testenv
