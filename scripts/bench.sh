#!/usr/bin/env bash
# Runs the benchmark sections in bench/ (in name order) and writes BENCHMARKS.md.
# Each bench/NN-name.sh prints one Markdown section on stdout (its measurements, the exact
# commands it ran and the anchor it was compared with, all measured in this same run).
# Each section is kept between <!-- bench: SCRIPT --> and <!-- /bench --> markers, so that
# BENCH=NN-name make bench reruns only the matching sections and keeps the others as they were.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build
only="${BENCH:-}"
sections=$(mktemp -d)
trap 'rm -rf "$sections"' EXIT
for s in bench/*.sh; do
  [ -n "$only" ] && [[ "$s" != *"$only"* ]] && continue
  echo "bench: running $s" >&2
  out="$sections/$(basename "$s").md"
  if ! bash "$s" > "$out"; then
    echo "bench: $s failed" >&2
    printf '\n_%s failed in this run._\n' "$s" >> "$out"
  fi
done
python3 - "$sections" "$only" <<'PY'
import os, re, sys, datetime, subprocess
sections, only = sys.argv[1], sys.argv[2]
new = {f[:-3]: open(os.path.join(sections, f)).read().strip() for f in sorted(os.listdir(sections))}
old = {}
if only and os.path.exists("BENCHMARKS.md"):
    text = open("BENCHMARKS.md").read()
    for m in re.finditer(r"<!-- bench: bench/(\S+) -->\n(.*?)\n<!-- /bench -->", text, re.S):
        old[m.group(1)] = m.group(2).strip()
cores = os.cpu_count()
uname = " ".join(os.uname()[i] for i in (0, 2))
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
head = ["# Benchmarks", "",
        f"Written by `make bench` on {now}, {cores} cores, {uname}" +
        (f" (sections matching `BENCH={only}` rerun then; the others keep the date of their own run, given in each)." if only else "."),
        "Every number below was measured in the same run as its anchor.", ""]
body = []
for script in sorted(set(old) | set(new)):
    text = new.get(script, old.get(script))
    if script in new:
        text += f"\n\n_Measured {now}._"
    body += [f"<!-- bench: bench/{script} -->", text, "<!-- /bench -->", ""]
open("BENCHMARKS.md", "w").write("\n".join(head + body))
PY
echo "bench: wrote BENCHMARKS.md" >&2
