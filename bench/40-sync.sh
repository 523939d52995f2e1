#!/usr/bin/env bash
# Config sync: "lbagent sync" against the guide's "rsync -e ssh" over the same OpenSSH sshd
# (127.0.0.1, its own host key), on an /etc/xroad-like tree of 2,000 files.
# Prints one Markdown section. Bounded (~3 min), loopback only, removes everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
for p in rsync ssh-keygen hyperfine /usr/sbin/sshd; do command -v "$p" >/dev/null || { echo "bench 40-sync: $p missing" >&2; exit 1; }; done

tmp=$(mktemp -d /tmp/bench-sync.XXXXXX)
sshd_pid=""; worker_pid=""; loop_pid=""
cleanup() {
  [ -n "$loop_pid" ] && kill "$loop_pid" 2>/dev/null || true
  [ -n "$worker_pid" ] && kill "$worker_pid" 2>/dev/null || true
  if [ -n "$sshd_pid" ]; then
    for c in $(pgrep -P "$sshd_pid" 2>/dev/null); do kill "$c" 2>/dev/null || true; done
    kill "$sshd_pid" 2>/dev/null || true
  fi
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/lbagent" ./cmd/lbagent
mkdir -p /run/sshd "$tmp/empty"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ssh-keygen -q -t ed25519 -N '' -f "$tmp/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$tmp/client_key"
cp "$tmp/client_key.pub" "$tmp/authorized_keys"
echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$tmp/host_key.pub")" > "$tmp/known_hosts"
cat > "$tmp/sshd_config" <<CONF
ListenAddress 127.0.0.1:$port
HostKey $tmp/host_key
PidFile $tmp/sshd.pid
AuthorizedKeysFile $tmp/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
MaxStartups 100:30:200
Subsystem sftp internal-sftp
CONF
/usr/sbin/sshd -D -e -f "$tmp/sshd_config" 2>"$tmp/sshd.log" &
sshd_pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done

# An /etc/xroad-like tree: 40 directories x 50 files (200 B .. 20 KB), keyconf of 64 KB,
# plus the guide's excluded parts (globalconf, postgresql, db.properties, *.tmp).
src="$tmp/primary"; dst="$tmp/secondary"
python3 - "$src" <<'PY'
import os, sys, random
root = sys.argv[1]; random.seed(4)
dirs = ["conf.d", "signer", "ssl", "services", "backup.d", "jetty", "nginx", "proxy", "confclient", "ds"]
n = 0
for i in range(40):
    d = os.path.join(root, dirs[i % len(dirs)] + ("" if i < len(dirs) else "/sub%d" % i))
    os.makedirs(d, exist_ok=True)
    for j in range(50):
        with open(os.path.join(d, "file%03d.%s" % (j, "xml" if j % 3 else "ini")), "wb") as f:
            f.write(os.urandom(random.randint(200, 20000)))
        n += 1
with open(os.path.join(root, "signer", "keyconf.xml"), "wb") as f: f.write(os.urandom(65536))
for p in ["globalconf/EE/shared-params.xml", "postgresql/x.conf", "db.properties", "conf.d/node.ini", "x.tmp"]:
    os.makedirs(os.path.dirname(os.path.join(root, p)) or root, exist_ok=True)
    open(os.path.join(root, p), "w").write("excluded\n")
PY
files=$(find "$src" -type f | wc -l)

ssh_opts="-o ConnectTimeout=5 -p $port -i $tmp/client_key -o UserKnownHostsFile=$tmp/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes"
RSYNC="rsync -e \"ssh $ssh_opts\" -aqz --timeout=10 --delete-delay --exclude db.properties --exclude /conf.d/node.ini --exclude '*.tmp' --exclude /postgresql --exclude /globalconf --exclude /gpghome --delay-updates --log-file=$tmp/rsync.log root@127.0.0.1:$src/ $dst/"
LB="$tmp/lbagent sync --xroad-dir $tmp/empty --primary 127.0.0.1:$port --user root --identity $tmp/client_key --known-hosts $tmp/known_hosts --source $src/ --target $dst/ --pause-file $tmp/paused --log-file $tmp/lbagent-sync.log --state-dir $tmp/state --serve-command $tmp/lbagent-serve"
# The primary's "lbagent sync serve" (the same binary; a wrapper because the command is one word here).
printf '#!/bin/sh\nexec %s sync serve "$@"\n' "$tmp/lbagent" > "$tmp/lbagent-serve"; chmod +x "$tmp/lbagent-serve"

# CPU in clock ticks: listener sshd and every live process below it (session processes,
# sftp, "lbagent sync serve"), each with its reaped children.
descendants() { local c; for c in $(pgrep -P "$1" 2>/dev/null); do echo "$c"; descendants "$c"; done; }
server_ticks() {
  local t=0 p f
  for p in $sshd_pid $(descendants "$sshd_pid"); do
    f=$(sed 's/.*) //' /proc/$p/stat 2>/dev/null) || continue
    set -- $f
    t=$((t + ${12} + ${13} + ${14} + ${15}))
  done
  echo $t
}
proc_ticks() { local f; f=$(sed 's/.*) //' /proc/$1/stat); set -- $f; echo $((${12} + ${13} + ${14} + ${15})); }
hz=$(getconf CLK_TCK)
ms() { python3 -c "print(f'{$1*1000/$hz/$2:.1f}')"; }

md="$tmp/md"; mkdir -p "$md"
# 1. Initial sync into an empty directory.
hyperfine -N 2>/dev/null >/dev/null || true
hyperfine --style none -w 1 -r 5 --prepare "rm -rf $dst" --export-markdown "$md/initial.md" \
  -n "rsync -e ssh (guide options)" "$RSYNC" -n "lbagent sync --once" "$LB --once" >/dev/null 2>&1
# 2. No-change pass, one process per pass (connection set up each time).
$LB --once
hyperfine --style none -w 2 -r 10 --export-markdown "$md/nochange.md" \
  -n "rsync -e ssh (guide options)" "$RSYNC" -n "lbagent sync --once" "$LB --once" >/dev/null 2>&1
# 3. One changed file.
hyperfine --style none -w 1 -r 10 --prepare "head -c 4096 /dev/urandom > $src/signer/keyconf.xml" --export-markdown "$md/onechange.md" \
  -n "rsync -e ssh (guide options)" "$RSYNC" -n "lbagent sync --once" "$LB --once" >/dev/null 2>&1

# 4. CPU of a no-change pass, both ends. rsync: 20 runs. lbagent: the kept-connection worker.
eval "$RSYNC"
s0=$(server_ticks)
c0=$( (times) | tail -1 )
cpu_rsync_client=$( ( for _ in $(seq 20); do eval "$RSYNC"; done; times ) | tail -1 | awk '{split($1,a,"m"); split($2,b,"m"); print (a[1]*60+a[2]+b[1]*60+b[2])}' )
s1=$(server_ticks)
rsync_client_ms=$(python3 -c "print(f'{$cpu_rsync_client*1000/20:.1f}')")
rsync_server_ms=$(ms $((s1 - s0)) 20)

# Idle CPU of the kept-connection worker (1 s interval), both ends, per second of wall time:
# with change notices ("lbagent sync serve" on the primary, the default) and polling only.
idle_cpu() { # $1 = extra flags; sets idle_passes, lb_client_ms, lb_server_ms, idle_wall, notify
  # Earlier sessions (rsync, --once) first end and are reaped: their CPU would otherwise land
  # in the listener's counters inside the window.
  for _ in $(seq 100); do [ -z "$(pgrep -P "$sshd_pid")" ] && break; sleep 0.1; done
  $LB --interval 1s --log-level debug $1 2>"$tmp/worker.log" &
  worker_pid=$!
  for _ in $(seq 200); do grep -q "no changes" "$tmp/worker.log" 2>/dev/null && break; sleep 0.1; done
  sleep 3 # the start is over (serve's ready line and the pass after it), idle from here
  local n0 n1 w0 w1 s0 s1 t0 t1
  n0=$(grep -c "no changes" "$tmp/worker.log"); w0=$(proc_ticks $worker_pid); s0=$(server_ticks); t0=$(date +%s%N)
  sleep $window
  n1=$(grep -c "no changes" "$tmp/worker.log"); w1=$(proc_ticks $worker_pid); s1=$(server_ticks); t1=$(date +%s%N)
  idle_passes=$((n1 - n0))
  local secs=$(( (t1 - t0) / 1000000000 ))
  lb_client_ms=$(ms $((w1 - w0)) $secs)
  lb_server_ms=$(ms $((s1 - s0)) $secs)
  idle_wall=$(grep "no changes" "$tmp/worker.log" | tail -20 | python3 -c '
import sys, json, statistics
d=[json.loads(l)["duration"] for l in sys.stdin]
print(f"{statistics.median(d):.1f}")')
}
window=60

# 5. Propagation latency: change a file on the primary, wait until the secondary has it.
# "rename" replaces it the way X-Road writes its files (a temporary file, then rename);
# "inplace" rewrites it in place (shell redirection), which moves no directory's time.
propagate() { # $1 = label, $2 = rename|inplace, $3 = changes; prints latencies in ms
  local i t0 t1 out=""
  for i in $(seq "$3"); do
    sleep 0.$((RANDOM % 9 + 1))
    want="probe $1 $i $RANDOM"
    t0=$(date +%s%N)
    if [ "$2" = rename ]; then
      echo "$want" > "$src/signer/probe.tmp" && mv "$src/signer/probe.tmp" "$src/signer/probe.tmpx"
    else
      echo "$want" > "$src/signer/probe.tmpx"
    fi
    for _ in $(seq 3000); do
      [ "$(cat "$dst/signer/probe.tmpx" 2>/dev/null)" = "$want" ] && break
      sleep 0.005
    done
    t1=$(date +%s%N)
    out="$out $(( (t1 - t0) / 1000000 ))"
  done
  echo $out
}
pct() { python3 -c "
import sys; v=sorted(int(x) for x in '$1'.split()); n=len(v)
p=lambda q: v[min(n-1, int(round(q*(n-1))))]
print(f'{p(0.5)} ms', f'{p(0.95)} ms', f'{v[-1]} ms', sep='|')"; }

idle_cpu ""
idle_n=$idle_passes; cpu_c=$lb_client_ms; cpu_s=$lb_server_ms; wall_n=$idle_wall
pgrep -f "lbagent sync serve" >/dev/null || { echo "bench 40-sync: lbagent sync serve is not running on the primary" >&2; exit 1; }
sv_rename=$(propagate lbagent-serve rename 30)
sv_inplace=$(propagate lbagent-serve inplace 30)
kill $worker_pid; wait $worker_pid 2>/dev/null || true; worker_pid=""

idle_cpu "--serve-command="
poll_n=$idle_passes; pcpu_c=$lb_client_ms; pcpu_s=$lb_server_ms; wall_p=$idle_wall
lb_lat=$(propagate lbagent rename 15)
kill $worker_pid; wait $worker_pid 2>/dev/null || true; worker_pid=""

( while :; do eval "$RSYNC" || true; sleep 1; done ) &
loop_pid=$!
rs_lat=$(propagate rsync rename 15)
kill $loop_pid; wait $loop_pid 2>/dev/null || true; loop_pid=""
IFS='|' read -r sr50 sr95 srmax <<<"$(pct "$sv_rename")"
IFS='|' read -r si50 si95 simax <<<"$(pct "$sv_inplace")"
IFS='|' read -r lb50 lb95 lbmax <<<"$(pct "$lb_lat")"
IFS='|' read -r rs50 rs95 rsmax <<<"$(pct "$rs_lat")"

strip() { sed 's/`//g' "$1"; }
cat <<OUT
## Config sync: lbagent sync vs the guide's rsync -e ssh

Tree: $files files like /etc/xroad (40 directories, 200 B-20 KB each, a 64 KB keyconf.xml, plus
the guide's excluded files), one OpenSSH sshd on 127.0.0.1:$port (internal-sftp), same run,
both tools logging into a file. rsync command (the guide's options, section 5.2.1):

    rsync -e "ssh -o ConnectTimeout=5 -p PORT -i KEY -o UserKnownHostsFile=KH" -aqz --timeout=10 --delete-delay \\
      --exclude db.properties --exclude /conf.d/node.ini --exclude '*.tmp' --exclude /postgresql \\
      --exclude /globalconf --exclude /gpghome --delay-updates --log-file=LOG root@127.0.0.1:SRC/ DST/

lbagent command: \`lbagent sync [--once] --primary 127.0.0.1:PORT --user root --identity KEY --known-hosts KH --source SRC/ --target DST/\`
(default excludes = the guide's).

### Initial sync into an empty directory (hyperfine, 5 runs, target removed before each)

$(strip "$md/initial.md")

### No-change pass, one process per pass (new SSH connection each time; 10 runs)

$(strip "$md/nochange.md")

### One changed file (4 KB keyconf.xml rewritten before each run; 10 runs)

$(strip "$md/onechange.md")

### CPU of a no-change pass, both ends

| | client CPU | server (sshd) CPU | wall / pass |
|---|---|---|---|
| rsync -e ssh, 20 runs | $rsync_client_ms ms / pass | $rsync_server_ms ms / pass | see table above |
| lbagent sync worker with change notices (\`lbagent sync serve\` on the primary, the default): a pass on each notice, otherwise one every 10 s (\`--full-scan-interval\`, the safety net; a full listing every minute); $idle_n idle passes in ${window} s | $cpu_c ms / s | $cpu_s ms / s | ${wall_n} ms (median) |
| lbagent sync worker polling only (\`--serve-command=\`), 1 s interval, $poll_n idle passes in ${window} s | $pcpu_c ms / s | $pcpu_s ms / s | ${wall_p} ms (median) |

CPU from /proc (clock ticks of $((1000 / hz)) ms): client = the rsync/ssh processes (bash \`times\`) or the
lbagent process; server = the listening sshd and every process below it (sessions, sftp,
\`lbagent sync serve\`), with their reaped children. The worker's CPU is per second of wall
time.

An idle lbagent pass checks each directory of the primary (one SFTP LSTAT each) and lists
only those whose time moved; the whole tree is listed every 10 s (\`--full-scan-interval\`),
which is included in the average above. \`lbagent sync serve\` sleeps in inotify while
nothing changes.

### Change-to-secondary propagation (changes at random moments, 5 ms polling of the target)

| | changes | p50 | p95 | max |
|---|---|---|---|---|
| lbagent sync worker with change notices, file replaced by rename (as X-Road writes) | 30 | $sr50 | $sr95 | $srmax |
| lbagent sync worker with change notices, file rewritten in place (shell \`>\`) | 30 | $si50 | $si95 | $simax |
| lbagent sync worker polling only, --interval 1s, file replaced by rename | 15 | $lb50 | $lb95 | $lbmax |
| rsync -e ssh in a loop with \`sleep 1\`, file replaced by rename (the guide's timer uses 60 s: ~30 s on average) | 15 | $rs50 | $rs95 | $rsmax |

Goals: initial sync no slower than rsync; idle CPU at most that of the earlier polling
worker (3.1 ms + 2.4 ms per second on 2026-11-25, unloaded); p95 propagation ≤ 250 ms with
change notices.
OUT
