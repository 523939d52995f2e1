#!/usr/bin/env bash
# Runs every benchmark section in bench/ (in name order) and writes BENCHMARKS.md.
# Each bench/NN-name.sh prints one Markdown section on stdout (its measurements, the exact
# commands it ran and the anchor it was compared with, all measured in this same run).
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build
out=$(mktemp)
{
  echo "# Benchmarks"
  echo
  echo "Written by \`make bench\` on $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -sr)."
  echo "Every number below was measured in that run, next to its anchor."
  echo
} > "$out"
only="${BENCH:-}"
for s in bench/*.sh; do
  [ -n "$only" ] && [[ "$s" != *"$only"* ]] && continue
  echo "bench: running $s" >&2
  if ! bash "$s" >> "$out"; then
    echo "bench: $s failed" >&2
    printf '\n_%s failed in this run._\n\n' "$s" >> "$out"
  fi
  echo >> "$out"
done
mv "$out" BENCHMARKS.md
echo "bench: wrote BENCHMARKS.md" >&2
