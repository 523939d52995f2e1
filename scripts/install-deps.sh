#!/usr/bin/env bash
# Installs the Debian packages that the tests, the demo and the benchmarks need, when missing.
# Safe to run again: it only calls apt-get when a package is not installed yet.
set -euo pipefail

pkgs=(
  postgresql-15          # serverconf database: health check queries, replication tests
  postgresql-client-15   # pg_basebackup, psql
  haproxy                # the load balancer of the integration tests (runtime API, agent-check)
  nginx                  # benchmark anchor (return 200) and nginx adapter tests
  libnginx-mod-http-lua  # Lua module for the nginx health plugin
  libnginx-mod-stream    # nginx stream {}: TCP upstreams, and the agent-check anchor of make bench
  openssh-server         # sshd for the config sync tests
  openssh-client         # ssh-keygen, ssh for rsync comparisons
  rsync                  # the guide's sync tool, benchmark baseline
  wrk                    # HTTP load generator for make bench
  hyperfine              # command timing for make bench
  socat                  # fork-per-connection agent baseline in make bench
  procps                 # ps/pkill used by scripts
  systemd                # systemd-analyze verify of the shipped units (cmd/lbagent, deploy/mkdeb tests)
  lintian                # checks the Debian package (deploy/mkdeb tests)
  ca-certificates
)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run as root (or: sudo $0)" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d keeps the packages' own services from starting: tests start their own instances.
had_policy=0
[ -e /usr/sbin/policy-rc.d ] && had_policy=1
if [ $had_policy -eq 0 ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
fi
trap '[ $had_policy -eq 0 ] && rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
