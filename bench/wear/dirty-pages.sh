#!/usr/bin/env bash
# Which files a running gateway makes the kernel write, page by page: every
# page cache page the process dirties (the kernel's
# writeback:writeback_dirty_folio tracepoint, through perf) over SECONDS,
# counted per file of the buffer's directory. A page is counted each time it
# goes from clean to dirty, which is what /proc/PID/io write_bytes counts and
# what the card will be written: a WAL page fdatasync'ed after each commit,
# SQLite's -shm index pages written back by the kernel, and the filesystem's
# own blocks (inode tables: a file's mtime and size) all show up.
#
#   bench/wear/dirty-pages.sh PID BUFFER_DIR [SECONDS]    (root; linux-perf)
#
# Prints one line per file (pages, KiB, KiB an hour) and the total.
set -euo pipefail
pid=${1:?usage: dirty-pages.sh PID BUFFER_DIR [SECONDS]}
dir=${2:?usage: dirty-pages.sh PID BUFFER_DIR [SECONDS]}
seconds=${3:-600}
command -v perf >/dev/null || { echo "dirty-pages.sh: needs perf (apt-get install linux-perf)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Inode numbers of the directory's files now and at the end (a WAL may be
# replaced, the file moved aside after a recovery).
names() { find "$dir" -maxdepth 1 -type f -printf '%i %f\n' >>"$work/inodes"; }
names
timeout "$seconds" perf record -q -e writeback:writeback_dirty_folio -p "$pid" -o "$work/perf.data" \
  >/dev/null 2>&1 || true
names
perf script -i "$work/perf.data" 2>/dev/null >"$work/trace" || true

awk -v seconds="$seconds" '
  FNR == NR { name[$1] = $2; next }
  {
    for (i = 1; i <= NF; i++) if ($i ~ /^ino=/) { split($i, kv, "="); ino = kv[2] }
    file = (ino in name) ? name[ino] : "other (filesystem metadata: inode tables, journal)"
    pages[file] += 1
    total += 1
  }
  END {
    printf "%-52s %7s %9s %11s\n", "file", "pages", "KiB", "KiB/hour"
    for (f in pages)
      printf "%-52s %7d %9d %11.0f\n", f, pages[f], pages[f] * 4, pages[f] * 4 * 3600 / seconds
    printf "%-52s %7d %9d %11.0f\n", "total (" seconds " s)", total, total * 4, total * 4 * 3600 / seconds
  }' "$work/inodes" "$work/trace"
