#!/usr/bin/env bash
# null.sh - the FUSE client's own ceiling: pifs-mount with the null backend.
#
# Usage:
#   bench/null.sh [--size MIB]
#
# pifs-mount-null is pifs-mount with bench/null_cluster.c in place of
# client/cluster.c: one node, R = 1, the metadata in the process, chunks
# packed exactly as on the real path (XXH3, LZ4 when it pays, frame) and kept
# in the process's RAM. No network, no storage daemon: what it measures is the
# client alone (FUSE, the write buffer, framing, unpacking and verifying), so a
# regression there shows here, apart from the cluster's.
#
# Workloads, each dd bounded by 'timeout 300', each on a fresh mount (the null
# backend keeps its chunks only while its process lives):
#   write_rand / read_rand    SIZE MiB of incompressible data, dd bs=1M conv=fsync,
#                             read back after dropping the kernel's caches
#   write_text / read_text    the same with JSON-like text (pifs-bench-gen text)
# Reads are cold: the kernel's caches are dropped, and the client's chunk cache
# holds only chunks it has read, never those it wrote. They come from the null
# backend's RAM, which is the point: the client's ceiling. Every read is
# compared with its source afterwards (untimed).
# Default SIZE 1024.
#
# Printed: MB/s (10^6 bytes); CPU seconds (user + system) of pifs-mount-null
# per GiB moved, from /proc/PID/stat; its peak RSS (VmHWM), and that minus the
# chunk frames the null backend held (from df), which is the client's share.
#
# Needs root (drop_caches, /dev/fuse). Builds nothing: binaries come from
# $PIFS_BIN (a build directory made with cmake -DPIFS_BENCH=ON; default
# REPO/build-bench); PIFS_MOUNT_OPTS is passed to pifs-mount-null -o. Stops its
# mount, its process and removes its files on exit or Ctrl-C.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
PIFS_BIN=${PIFS_BIN:-$REPO/build-bench}
MOUNT_BIN=$PIFS_BIN/bench/pifs-mount-null
GEN=$PIFS_BIN/bench/pifs-bench-gen
SIZE=1024
TMP=
SHM=
PID=

usage() { sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; }
die() { printf 'null.sh: %s\n' "$*" >&2; exit 1; }

while (($#)); do
	case $1 in
	--size) SIZE=${2:-}; shift 2 || shift ;;
	-h | --help) usage; exit 0 ;;
	*) printf 'null.sh: unknown option %s\n' "$1" >&2; usage >&2; exit 2 ;;
	esac
done
[[ $SIZE =~ ^[1-9][0-9]*$ ]] || { printf "null.sh: --size '%s' is not a number of MiB\n" "$SIZE" >&2; exit 2; }
((EUID == 0)) || die "drop_caches and /dev/fuse need root: run this as root (sudo $0 ...)"
for b in "$MOUNT_BIN" "$GEN"; do
	[[ -x $b ]] || die "$b is missing: build it with cmake -S $REPO -B $PIFS_BIN -DPIFS_BENCH=ON -DCMAKE_BUILD_TYPE=Release && make -C $PIFS_BIN, or set PIFS_BIN"
done

stop_mount() {
	if [[ -n $TMP ]] && mountpoint -q "$TMP/mnt"; then
		fusermount3 -u "$TMP/mnt" 2>/dev/null || umount -l "$TMP/mnt"
	fi
	if [[ -n $PID ]]; then
		# The process exits once unmounted; stop it if it does not.
		for _ in $(seq 50); do
			kill -0 "$PID" 2>/dev/null || break
			sleep 0.1
		done
		kill "$PID" 2>/dev/null
		wait "$PID" 2>/dev/null
		PID=
	fi
}

cleanup() {
	trap - EXIT INT TERM
	stop_mount
	[[ -n $TMP ]] && rm -rf "$TMP"
	[[ -n $SHM ]] && rm -rf "$SHM"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

TMP=$(mktemp -d /tmp/pifs-null.XXXXXX) || die "cannot make a directory in /tmp"
SHM=$(mktemp -d /dev/shm/pifs-null.XXXXXX) || die "cannot make a directory in /dev/shm"
mkdir "$TMP/mnt"
# The one node's address is never dialled; its data directory never touched;
# no socket is opened, so there is nothing for keys to protect.
cat >"$TMP/pifs.conf" <<EOF
[cluster]
replicas = 1
chunk_size = 4M
security = none
[node 1]
address = 127.0.0.1:7070
data = $TMP/data
meta = yes
[client]
cache = 64M
EOF

HZ=$(getconf CLK_TCK)

# ticks: user + system ticks of the mount process.
ticks() { sed 's/^.*) //' "/proc/$PID/stat" | awk '{ print $12 + $13 }'; }
now() { date +%s.%N; }

start_mount() {
	"$MOUNT_BIN" -c "$TMP/pifs.conf" -f ${PIFS_MOUNT_OPTS:+-o "$PIFS_MOUNT_OPTS"} "$TMP/mnt" \
		2>>"$TMP/mount.log" &
	PID=$!
	for _ in $(seq 100); do
		mountpoint -q "$TMP/mnt" && return 0
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$TMP/mount.log" >&2
	die "pifs-mount-null did not mount on $TMP/mnt within 10 s (its log is above)"
}

# report NAME T0 T1 C0 C1: one line of MB/s and CPU s/GiB.
report() {
	awk -v n="$1" -v t0="$2" -v t1="$3" -v c="$(($5 - $4))" -v hz="$HZ" -v mib="$SIZE" \
		'BEGIN { printf "%-11s %6d MiB %9.1f MB/s %7.2f CPU s/GiB\n", n, mib,
			 mib * 1048576 / 1e6 / (t1 - t0), c / hz / (mib / 1024) }'
}

# one KIND SEED: write, drop caches, read, compare, on a fresh mount.
one() {
	local kind=$1 short=${1/random/rand} f t0 t1 t2 t3 c0 c1 c2 c3 hwm held
	"$GEN" "$kind" "$SIZE" "$2" >"$SHM/src" || die "pifs-bench-gen $kind $SIZE failed"
	start_mount
	f=$TMP/mnt/$kind.bin
	sync
	c0=$(ticks) t0=$(now)
	timeout 300 dd if="$SHM/src" of="$f" bs=1M conv=fsync status=none ||
		die "write_$short: dd into the mount failed or took over 300 s (log: $TMP/mount.log)"
	t1=$(now) c1=$(ticks)
	sync
	echo 3 >/proc/sys/vm/drop_caches
	c2=$(ticks) t2=$(now)
	timeout 300 dd if="$f" of=/dev/null bs=1M status=none ||
		die "read_$short: dd from the mount failed or took over 300 s (log: $TMP/mount.log)"
	t3=$(now) c3=$(ticks)
	report "write_$short" "$t0" "$t1" "$c0" "$c1"
	report "read_$short" "$t2" "$t3" "$c2" "$c3"
	cmp -s "$SHM/src" "$f" || die "read_$short: the data read back differs from what was written"
	hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$PID/status")
	held=$(stat -f -c '%b %f %S' "$TMP/mnt" | awk '{ print int(($1 - $2) * $3 / 1024) }')
	printf '%-11s peak RSS %d MiB; chunks held %d MiB; client %d MiB\n' "rss_$short" \
		$((hwm >> 10)) $((held >> 10)) $(((hwm - held) >> 10))
	stop_mount
	rm -f "$SHM/src"
}

echo "pifs-mount-null, $SIZE MiB, chunk 4 MiB, cache 64M${PIFS_MOUNT_OPTS:+, -o $PIFS_MOUNT_OPTS};" \
	"$(nproc) x $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo);" \
	"load $(cut -d' ' -f1-3 /proc/loadavg)"
one random 1
one text 2
