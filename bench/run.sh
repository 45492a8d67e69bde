#!/usr/bin/env bash
# run.sh - pifs, GlusterFS and MooseFS side by side on an emulated Gigabit
# switch (see netns.sh), or the same workloads on an existing mount.
#
# Usage:
#   bench/run.sh [--systems pifs,glusterfs,moosefs] [--replicas 2,3] [--runs 3] [--quick]
#                [--size MIB] [--files N] [--max-minutes M] [--voters 1|3]
#                [--security curve|none]
#   bench/run.sh --mount /mnt/expo [--runs 3] [--quick] [--size MIB] [--files N]
#
# Workloads (issue 5), each bounded in time, the whole run bounded by --max-minutes:
#   write_rand / read_rand    SIZE MiB of incompressible data, dd bs=1M conv=fsync;
#                             read after dropping caches and remounting
#   write_text / read_text    the same with JSON-like text (LZ4 ratio ~0.38)
#   files_create / files_read_cold / files_rm    FILES files of 64 KiB
#   ls_cold / ls_warm / stat_cold                ls -l and lstat of that directory
#   two_readers               two clients each read their own SIZE/2 MiB file at once
# Sizes: SIZE 1024, FILES 2000; --quick: SIZE 256, FILES 500. --voters: the
# metadata voters of the pifs cluster (3 by default, as pifs-local makes it).
# --security: CURVE on every pifs socket with keys made for the run (the
# default, as a cluster runs), or none (plain TCP), to measure what CURVE costs.
#
# Collected: MB/s (10^6 bytes) or operations/s; CPU seconds of every process
# of the system (all processes in the bench namespaces, from /proc/PID/stat);
# peak RSS (VmHWM) of each daemon and client; bytes each link carried (from the
# host ends of the veth pairs). Output: bench/results/DATE/*.csv, then
# bench/RESULTS.md and bench/results.png (report.py, gnuplot).
#
# Needs root. Installs what it lacks with apt-get (glusterfs-server,
# moosefs-master, moosefs-chunkserver, moosefs-client, iperf3, gnuplot-nox,
# ethtool). pifs binaries: $PIFS_BIN (a build directory), else it builds
# $REPO/build-bench (cmake -DPIFS_BENCH=ON); PIFS_MOUNT_OPTS is passed to
# pifs-mount -o. Everything it starts runs in its
# own namespaces and is stopped, unmounted and removed on exit or Ctrl-C;
# 'bench/netns.sh cleanup' removes what a killed run left.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
# shellcheck source=netns.sh
source "$HERE/netns.sh"
ORIG_ARGS=("$@")

SYSTEMS=pifs,glusterfs,moosefs
REPLICAS=2,3
RUNS=3
QUICK=0
SIZE=
NFILES=
MOUNT=
MAX_MIN=
FILE_SIZE=65536
WORK=/var/tmp/pifs-bench
SHM=/dev/shm/pifs-bench
NSTORAGE=3
NCLIENTS=2
VOTERS=3
SECURITY=curve

usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; }

while (($#)); do
	case $1 in
	--systems) SYSTEMS=$2; shift 2 ;;
	--replicas) REPLICAS=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	--quick) QUICK=1; shift ;;
	--size) SIZE=$2; shift 2 ;;
	--files) NFILES=$2; shift 2 ;;
	--mount) MOUNT=$2; shift 2 ;;
	--max-minutes) MAX_MIN=$2; shift 2 ;;
	--voters) VOTERS=$2; shift 2 ;;
	--security) SECURITY=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) printf 'bench: unknown option %s\n' "$1" >&2; usage >&2; exit 2 ;;
	esac
done
if ((QUICK)); then
	SIZE=${SIZE:-256}
	NFILES=${NFILES:-500}
else
	SIZE=${SIZE:-1024}
	NFILES=${NFILES:-2000}
fi
[[ $RUNS =~ ^[1-9][0-9]?$ ]] || pb_die "--runs '$RUNS' is not a number from 1 to 99"
[[ $SIZE =~ ^[1-9][0-9]*$ ]] || pb_die "--size '$SIZE' is not a number of MiB"
[[ $VOTERS == 1 || $VOTERS == 3 ]] || pb_die "--voters '$VOTERS' is not 1 or 3"
[[ $SECURITY == curve || $SECURITY == none ]] || pb_die "--security '$SECURITY' is not curve or none"
[[ $NFILES =~ ^[1-9][0-9]*$ ]] || pb_die "--files '$NFILES' is not a positive number"
TWO=$((SIZE / 2))
MAX_MIN=${MAX_MIN:-$((QUICK ? 45 : 120))}
[[ $MAX_MIN =~ ^[1-9][0-9]*$ ]] || pb_die "--max-minutes '$MAX_MIN' is not a positive number"
DEADLINE=$((SECONDS + MAX_MIN * 60))
# One workload may take at most this long: a 5 MB/s or 20 files/s floor.
WL_TIMEOUT=$((SIZE / 5 > NFILES / 20 ? SIZE / 5 : NFILES / 20))
((WL_TIMEOUT < 60)) && WL_TIMEOUT=60
CLK_TCK=$(getconf CLK_TCK)

STAMP=$(date +%Y%m%d-%H%M%S)
OUT=$HERE/results/$STAMP
BIN=

pb_require_root

# ---------------------------------------------------------------- tools ----

need_packages() {
	local -a want=() pk
	local c
	for c in "iperf3 iperf3" "gnuplot gnuplot-nox" "ethtool ethtool"; do
		read -r -a pk <<<"$c"
		command -v "${pk[0]}" >/dev/null || want+=("${pk[1]}")
	done
	if [[ ,$SYSTEMS, == *,glusterfs,* ]]; then
		command -v glusterd >/dev/null || want+=(glusterfs-server)
	fi
	if [[ ,$SYSTEMS, == *,moosefs,* ]]; then
		command -v mfsmaster >/dev/null || want+=(moosefs-master)
		command -v mfschunkserver >/dev/null || want+=(moosefs-chunkserver)
		command -v mfsmount >/dev/null || want+=(moosefs-client)
	fi
	((${#want[@]})) || return 0
	pb_say "installing ${want[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${want[@]}" \
		>"$OUT/apt.log" 2>&1 ||
		{ apt-get update >>"$OUT/apt.log" 2>&1 &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
				"${want[@]}" >>"$OUT/apt.log" 2>&1; } ||
		pb_die "apt-get install ${want[*]} failed: see $OUT/apt.log"
}

# build_drivers: the C drivers (and pifs when asked for) into BIN.
build_drivers() {
	local b=$REPO/build-bench
	if [[ -n ${PIFS_BIN:-} ]]; then
		BIN=$PIFS_BIN
	else
		BIN=$b
		pb_say "building pifs and the bench drivers in $b (log: $OUT/build.log)"
		# -k: a target that does not build (another engineer's work in
		# progress) must not keep the others from being built.
		cmake -S "$REPO" -B "$b" -DCMAKE_BUILD_TYPE=Release -DPIFS_BENCH=ON -DPIFS_TESTS=OFF \
			>"$OUT/build.log" 2>&1 && nice make -k -C "$b" -j2 >>"$OUT/build.log" 2>&1 ||
			pb_say "some targets do not build (see $OUT/build.log); going on with those that do"
		if ! [[ -x $b/bench/pifs-bench-gen && -x $b/bench/pifs-bench-files ]]; then
			pb_say "building the bench drivers alone in $b/bench-only"
			BIN=$b/bench-only
			{ cmake -S "$HERE" -B "$BIN" -DCMAKE_BUILD_TYPE=Release &&
				make -C "$BIN" -j2; } >>"$OUT/build.log" 2>&1 ||
				pb_die "the bench drivers do not build: see $OUT/build.log"
		fi
	fi
	GEN=$(find_bin pifs-bench-gen) || pb_die "no pifs-bench-gen under $BIN"
	FILES=$(find_bin pifs-bench-files) || pb_die "no pifs-bench-files under $BIN"
}

find_bin() {
	local p
	for p in "$BIN/bench/$1" "$BIN/$1" "$BIN/storaged/$1" "$BIN/client/$1" "$BIN/tools/$1"; do
		[[ -x $p ]] && { echo "$p"; return 0; }
	done
	return 1
}

# ------------------------------------------------------------- cleanup ----

cleanup() {
	local m
	trap - EXIT INT TERM
	for m in $(awk -v w="$WORK" 'index($2, w) == 1 { print $2 }' /proc/self/mounts); do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	pb_cleanup
	kill $(jobs -p) 2>/dev/null
	if [[ -d $WORK ]]; then
		mkdir -p "$OUT/logs"
		find "$WORK" -name '*.log' -size -20M -exec cp --backup=numbered -t "$OUT/logs" {} + 2>/dev/null
		rm -rf "$WORK"
	fi
	rm -rf "$SHM"
	[[ -n $MOUNT ]] && rm -rf "${MOUNT:?}/pifs-bench.$$"
}

# --------------------------------------------------------- measurement ----

# cpu_ticks: user+system ticks of every process in the bench namespaces.
cpu_ticks() {
	local ns pids=()
	for ns in "${PB_NS_LIST[@]}"; do
		pids+=($(ip netns pids "$ns" 2>/dev/null))
	done
	((${#pids[@]})) || { echo 0; return; }
	(cd /proc && cat "${pids[@]/%//stat}" 2>/dev/null) |
		awk '{ sub(/^.*\) /, ""); t += $12 + $13 } END { print t + 0 }'
}

declare -A RSS_MAX
# rss_sample: remember the peak RSS of every process in the bench namespaces.
rss_sample() {
	local ns pid comm hwm key
	for ns in "${PB_NS_LIST[@]}"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			comm=$(<"/proc/$pid/comm") 2>/dev/null || continue
			hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
			[[ -n $hwm ]] || continue
			key="$ns,$comm"
			((hwm > ${RSS_MAX[$key]:-0})) && RSS_MAX[$key]=$hwm
		done
	done
}

rss_flush() {
	local sys=$1 r=$2 key
	for key in "${!RSS_MAX[@]}"; do
		echo "$sys,$r,$key,${RSS_MAX[$key]}" >>"$OUT/rss.csv"
	done
	RSS_MAX=()
}

declare -A LINK0
links_mark() {
	local ns o i
	while read -r ns o i; do LINK0[$ns]="$o $i"; done < <(pb_link_bytes)
}

links_write() {
	local tag=$1 ns o i o0 i0
	while read -r ns o i; do
		read -r o0 i0 <<<"${LINK0[$ns]:-0 0}"
		echo "$tag,$ns,$((o - o0)),$((i - i0))" >>"$OUT/links.csv"
	done < <(pb_link_bytes)
}

now() { date +%s.%N; }

# wl NAME UNIT BYTES COUNT CMD...: run one workload under a time bound and
# record it. UNIT MB/s: BYTES/seconds; otherwise COUNT/seconds.
SYS= R= RUN= FAILS=0
wl() {
	local name=$1 unit=$2 bytes=$3 count=$4 t0 t1 c0 c1 rc secs val status=ok
	shift 4
	if ((SECONDS > DEADLINE)); then
		pb_say "time is up (--max-minutes $MAX_MIN): skipping $name"
		echo "$SYS,$R,$RUN,$name,$unit,,,$bytes,,skipped" >>"$OUT/runs.csv"
		return 1
	fi
	links_mark
	c0=$(cpu_ticks)
	t0=$(now)
	timeout -k 10 "$WL_TIMEOUT" "$@" >"$WORK/wl.out" 2>"$WORK/wl.err"
	rc=$?
	t1=$(now)
	c1=$(cpu_ticks)
	rss_sample
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')
	if ((rc == 124 || rc == 137)); then
		status=timeout
	elif ((rc != 0)); then
		status=error
	fi
	if [[ $status != ok ]]; then
		FAILS=$((FAILS + 1))
		pb_say "$SYS R=$R run $RUN: $name failed ($status, rc $rc): $(head -c 300 "$WORK/wl.err")"
		{ echo "== $SYS R=$R run $RUN $name: $status rc $rc"; cat "$WORK/wl.err"; } >>"$OUT/errors.log"
		val=
	elif [[ $unit == MB/s ]]; then
		val=$(awk -v b="$bytes" -v s="$secs" 'BEGIN { printf "%.2f", b / 1e6 / s }')
	else
		val=$(awk -v n="$count" -v s="$secs" 'BEGIN { printf "%.1f", n / s }')
	fi
	echo "$SYS,$R,$RUN,$name,$unit,$val,$secs,$bytes,$(awk -v a="$c0" -v b="$c1" -v t="$CLK_TCK" \
		'BEGIN { printf "%.2f", (b - a) / t }'),$status" >>"$OUT/runs.csv"
	links_write "$SYS,$R,$RUN,$name"
	pb_say "$SYS R=$R run $RUN: $name ${val:-$status} $unit ($secs s)"
	[[ $status == ok ]]
}

# ------------------------------------------------------------- systems ----
# Each system: <sys>_start R, <sys>_mount NS MNT (returns once mounted),
# <sys>_prepare MNT (after the first mount), <sys>_stop.

node_addr() { pb_ns_addr "$PB_PREFIX-s$1"; }

# wait_for SECONDS WHAT CMD...: poll CMD every 0.2 s until it succeeds.
wait_for() {
	local secs=$1 what=$2 i
	shift 2
	for ((i = 0; i < secs * 5; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	pb_say "timed out after ${secs}s waiting for $what"
	return 1
}

listening() { [[ -n $(ip netns exec "$1" ss -ltnH "sport = :$2" 2>/dev/null) ]]; }

# -- GlusterFS: one glusterd per node in a private mount namespace with its
# own /var/lib/glusterd, /var/log/glusterfs and /run; R=2 is distributed
# replicated 3 x 2 over 6 bricks (two per node, each pair on two nodes), R=3
# is replica 3 over one brick per node.
declare -a GLUSTERD
gluster_cli() {
	nsenter -t "${GLUSTERD[1]}" -m -n -- timeout 60 gluster --mode=script "$@"
}

peers_connected() { (($(gluster_cli peer status | grep -c '(Connected)') >= NSTORAGE - 1)); }

glusterfs_start() {
	local r=$1 i d bricks=()
	for ((i = 1; i <= NSTORAGE; i++)); do
		d=$WORK/glusterfs/s$i
		mkdir -p "$d/lib" "$d/log" "$d/run" "$d/bricks"
		cp -a /var/lib/glusterd/. "$d/lib/"
		# Not through pb_in: $! must be glusterd itself (nsenter, unshare and
		# sh all exec), whose mount namespace the gluster CLI enters.
		nsenter --net="/run/netns/$PB_PREFIX-s$i" -- unshare -m --propagation private sh -c "
			mount --bind '$d/lib' /var/lib/glusterd &&
			mount --bind '$d/log' /var/log/glusterfs &&
			mount --bind '$d/run' /run &&
			exec glusterd -N --log-level=WARNING" </dev/null >>"$d/glusterd.log" 2>&1 &
		GLUSTERD[i]=$!
	done
	for ((i = 1; i <= NSTORAGE; i++)); do
		wait_for 30 "glusterd on $PB_PREFIX-s$i" listening "$PB_PREFIX-s$i" 24007 || return 1
	done
	for ((i = 2; i <= NSTORAGE; i++)); do
		gluster_cli peer probe "$(node_addr "$i")" >/dev/null ||
			{ pb_say "gluster peer probe $(node_addr "$i") failed"; return 1; }
	done
	wait_for 30 "the gluster peers" peers_connected || return 1
	if ((r == 2)); then
		for i in 1:1 2:1 3:1 1:2 2:2 3:2; do
			bricks+=("$(node_addr "${i%:*}"):$WORK/glusterfs/s${i%:*}/bricks/b${i#*:}")
		done
	else
		for ((i = 1; i <= r; i++)); do
			bricks+=("$(node_addr "$i"):$WORK/glusterfs/s$i/bricks/b1")
		done
	fi
	gluster_cli volume create pbvol replica "$r" transport tcp "${bricks[@]}" force >/dev/null &&
		gluster_cli volume start pbvol >/dev/null ||
		{ pb_say "creating or starting the gluster volume failed"; return 1; }
}

glusterfs_mount() {
	local ns=$1 mnt=$2
	pb_in "$ns" timeout 60 mount -t glusterfs \
		-o "log-level=WARNING,log-file=$WORK/glusterfs/$ns-mount.log" \
		"$(node_addr 1):/pbvol" "$mnt"
}

glusterfs_prepare() { :; }

stop_storage() {
	local i
	for ((i = 1; i <= NSTORAGE; i++)); do pb_kill_ns "$PB_PREFIX-s$i"; done
}

glusterfs_stop() { stop_storage; }

# -- MooseFS: the master on node 1, a chunkserver on every node, each with
# its own config file and data path; goal R, trash time 0.
moosefs_start() {
	local r=$1 d=$WORK/moosefs i
	mkdir -p "$d/master"
	cp /var/lib/mfs/metadata.mfs.empty "$d/master/metadata.mfs"
	printf '* / rw,alldirs,admin,maproot=0:0\n* . rw\n' >"$d/mfsexports.cfg"
	: >"$d/mfstopology.cfg"
	cat >"$d/mfsmaster.cfg" <<-EOF
		WORKING_USER = root
		WORKING_GROUP = root
		NICE_LEVEL = 0
		DATA_PATH = $d/master
		EXPORTS_FILENAME = $d/mfsexports.cfg
		TOPOLOGY_FILENAME = $d/mfstopology.cfg
	EOF
	pb_in "$PB_PREFIX-s1" mfsmaster -f -c "$d/mfsmaster.cfg" start </dev/null \
		>>"$d/master.log" 2>&1 &
	wait_for 30 "mfsmaster on $PB_PREFIX-s1" listening "$PB_PREFIX-s1" 9421 || return 1
	for ((i = 1; i <= NSTORAGE; i++)); do
		mkdir -p "$d/cs$i/hdd"
		echo "$d/cs$i/hdd" >"$d/cs$i/mfshdd.cfg"
		cat >"$d/cs$i/mfschunkserver.cfg" <<-EOF
			WORKING_USER = root
			WORKING_GROUP = root
			NICE_LEVEL = 0
			DATA_PATH = $d/cs$i
			HDD_CONF_FILENAME = $d/cs$i/mfshdd.cfg
			MASTER_HOST = $(node_addr 1)
			BIND_HOST = $(node_addr "$i")
		EOF
		pb_in "$PB_PREFIX-s$i" mfschunkserver -f -c "$d/cs$i/mfschunkserver.cfg" start \
			</dev/null >>"$d/cs$i/chunkserver.log" 2>&1 &
	done
	for ((i = 1; i <= NSTORAGE; i++)); do
		wait_for 30 "chunkserver $i registering with the master" cs_registered "$i" || return 1
	done
	sleep 2
}

cs_registered() {
	[[ -n $(ip netns exec "$PB_PREFIX-s$1" ss -tnH state established \
		"( dport = :9420 and src $(node_addr "$1") )" 2>/dev/null) ]]
}

moosefs_mount() {
	local ns=$1 mnt=$2
	pb_in "$ns" timeout 60 mfsmount "$mnt" -H "$(node_addr 1)" >>"$WORK/moosefs/$ns-mount.log" 2>&1
}

moosefs_prepare() {
	local out
	# The tools talk to the master directly: from the client's namespace.
	out=$(pb_in "$PB_PREFIX-c1" mfssetgoal -r "$R" "$1" 2>&1 &&
		pb_in "$PB_PREFIX-c1" mfssettrashtime -r 0 "$1" 2>&1) ||
		{ pb_say "setting goal $R and trash time 0 on $1 failed: $out"; return 1; }
}

moosefs_stop() { stop_storage; }

# -- pifs: a storage daemon per node (the first VOTERS are metadata voters),
# one pifs-mount per client.
pifs_start() {
	local r=$1 d=$WORK/pifs i
	STORAGED=$(find_bin pifs-storaged) && PMOUNT=$(find_bin pifs-mount) ||
		{ pb_say "pifs-storaged or pifs-mount is not built under $BIN"; return 1; }
	ADMIN=$(find_bin pifs-admin) || ADMIN=
	[[ $SECURITY == none || -n $ADMIN ]] ||
		{ pb_say "pifs-admin is not built under $BIN: it makes the keys"; return 1; }
	rm -rf "$d/keys"
	mkdir -p "$d"
	{
		echo "[cluster]"
		echo "replicas = $r"
		echo "chunk_size = 4M"
		echo "reserve = 256M"
		if [[ $SECURITY == none ]]; then
			echo "security = none"
		else
			echo "keys = $d/keys"
		fi
		for ((i = 1; i <= NSTORAGE; i++)); do
			echo
			echo "[node $i]"
			echo "address = $(node_addr "$i"):7070"
			echo "data = $d/node$i"
			echo "meta = $( ((i <= VOTERS)) && echo yes || echo no)"
			echo "weight = 100"
		done
		echo
		echo "[client]"
		echo "cache = 64M"
		echo "timeout = 10s"
	} >"$d/pifs.conf"
	if [[ $SECURITY == curve ]]; then
		"$ADMIN" -c "$d/pifs.conf" keys init >/dev/null ||
			{ pb_say "pifs-admin keys init failed"; return 1; }
	fi
	for ((i = 1; i <= NSTORAGE; i++)); do
		mkdir -p "$d/node$i"
		pb_in "$PB_PREFIX-s$i" "$STORAGED" -c "$d/pifs.conf" --node "$i" </dev/null \
			>>"$d/node$i.log" 2>&1 &
	done
	for ((i = 1; i <= NSTORAGE; i++)); do
		wait_for 30 "pifs-storaged on $PB_PREFIX-s$i" listening "$PB_PREFIX-s$i" 7070 || return 1
	done
	if [[ -n $ADMIN ]]; then
		wait_for 30 "every pifs node up (pifs-admin status)" pifs_healthy || return 1
	fi
}

pifs_healthy() {
	pb_in "$PB_PREFIX-c1" "$ADMIN" -c "$WORK/pifs/pifs.conf" --timeout 1s status --json |
		grep -q '"healthy":true'
}

pifs_mount() {
	local ns=$1 mnt=$2
	local -a opts=()
	[[ -n ${PIFS_MOUNT_OPTS:-} ]] && opts=(-o "$PIFS_MOUNT_OPTS")
	pb_in "$ns" "$PMOUNT" -c "$WORK/pifs/pifs.conf" "${opts[@]}" -f "$mnt" </dev/null \
		>>"$WORK/pifs/$ns-mount.log" 2>&1 &
	wait_for 20 "pifs-mount of $mnt" mountpoint -q "$mnt"
}

pifs_prepare() { :; }

pifs_stop() { stop_storage; }

# ------------------------------------------------------------- mounting ----

mnt_of() { echo "$WORK/mnt-$1"; }

mount_client() {
	local c=$1 mnt
	mnt=$(mnt_of "$c")
	mkdir -p "$mnt"
	"${SYS}_mount" "$PB_PREFIX-$c" "$mnt" || { pb_say "mounting $SYS at $mnt failed"; return 1; }
	wait_for 20 "the mount at $mnt" mountpoint -q "$mnt" && stat "$mnt" >/dev/null
}

umount_client() {
	local c=$1 mnt
	mnt=$(mnt_of "$c")
	rss_sample
	if mountpoint -q "$mnt"; then
		umount "$mnt" 2>/dev/null || { sleep 1; umount "$mnt"; } ||
			{ pb_say "cannot unmount $mnt: lazy unmount"; umount -l "$mnt"; }
	fi
	# The client process exits once unmounted; stop it if it does not.
	wait_for 5 "the $SYS client in $PB_PREFIX-$c to exit" \
		test -z "$(ip netns pids "$PB_PREFIX-$c")" || pb_kill_ns "$PB_PREFIX-$c"
}

drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

# cold C...: unmount the clients, drop every cache of the machine, mount them.
cold() {
	local c
	for c in "$@"; do umount_client "$c"; done
	drop_caches
	for c in "$@"; do mount_client "$c" || return 1; done
}

# ----------------------------------------------------------- workloads ----

gen() { "$GEN" "$1" "$2" "$3" >"$4"; }

# one_run M: every workload once on the mount M (clients mounted by the caller
# when COLD is "remount", or plain cache drops on a foreign mount).
one_run() {
	local m=$1 seed=$((R * 1000 + RUN * 10)) d
	d=$m/pifs-bench.$$
	mkdir -p "$d" "$SHM" || return 1

	gen random "$SIZE" "$seed" "$SHM/src"
	wl write_rand MB/s $((SIZE << 20)) 1 dd if="$SHM/src" of="$d/rand.bin" bs=1M conv=fsync status=none
	rm -f "$SHM/src"
	make_cold || return 1
	wl read_rand MB/s $((SIZE << 20)) 1 dd if="$d/rand.bin" of=/dev/null bs=1M status=none
	rm -f "$d/rand.bin"

	gen text "$SIZE" $((seed + 1)) "$SHM/src"
	wl write_text MB/s $((SIZE << 20)) 1 dd if="$SHM/src" of="$d/text.json" bs=1M conv=fsync status=none
	rm -f "$SHM/src"
	make_cold || return 1
	wl read_text MB/s $((SIZE << 20)) 1 dd if="$d/text.json" of=/dev/null bs=1M status=none
	rm -f "$d/text.json"

	local fb=$((NFILES * FILE_SIZE))
	wl files_create files/s "$fb" "$NFILES" "$FILES" create "$d/thumbs" "$NFILES" "$FILE_SIZE" $((seed + 2))
	make_cold || return 1
	wl files_read_cold files/s "$fb" "$NFILES" "$FILES" read "$d/thumbs" "$NFILES" "$FILE_SIZE"
	make_cold || return 1
	wl ls_cold entries/s 0 "$NFILES" sh -c 'ls -l "$1" >/dev/null' ls "$d/thumbs"
	wl ls_warm entries/s 0 "$NFILES" sh -c 'ls -l "$1" >/dev/null' ls "$d/thumbs"
	make_cold || return 1
	wl stat_cold entries/s 0 "$NFILES" "$FILES" stat "$d/thumbs"
	wl files_rm files/s 0 "$NFILES" "$FILES" rm "$d/thumbs" "$NFILES"
	rm -rf "$d/thumbs"

	if [[ -z $MOUNT ]]; then
		gen random "$TWO" $((seed + 3)) "$SHM/a"
		gen random "$TWO" $((seed + 4)) "$SHM/b"
		dd if="$SHM/a" of="$d/a.bin" bs=1M conv=fsync status=none &&
			dd if="$SHM/b" of="$d/b.bin" bs=1M conv=fsync status=none ||
			pb_say "$SYS R=$R: writing the two readers' files failed"
		rm -f "$SHM/a" "$SHM/b"
		cold c1 c2 || return 1
		local m2 d2
		m2=$(mnt_of c2)
		d2=$m2/pifs-bench.$$
		wl two_readers MB/s $((2 * (TWO << 20))) 1 sh -c \
			'dd if="$1" of=/dev/null bs=1M status=none & a=$!
			 dd if="$2" of=/dev/null bs=1M status=none; b=$?; wait $a && exit $b' \
			two "$d/a.bin" "$d2/b.bin"
		umount_client c2
		rm -f "$d/a.bin" "$d/b.bin"
	fi
	rmdir "$d" 2>/dev/null
	return 0
}

make_cold() {
	if [[ -n $MOUNT ]]; then
		drop_caches
	else
		cold c1
	fi
}

# ---------------------------------------------------------------- main ----

run_system() {
	local sys=$1 r=$2 run
	SYS=$sys R=$r
	rm -rf "${WORK:?}/$sys"
	mkdir -p "$WORK/$sys"
	pb_say "== $sys R=$r: starting"
	if ! "${sys}_start" "$r"; then
		pb_say "$sys R=$r did not start: see $OUT/logs after the run"
		echo "$sys,$r,0,start,,,,,,error" >>"$OUT/runs.csv"
		FAILS=$((FAILS + 1))
		"${sys}_stop"
		return 1
	fi
	if mount_client c1 && "${sys}_prepare" "$(mnt_of c1)"; then
		for ((run = 1; run <= RUNS; run++)); do
			RUN=$run
			((SECONDS > DEADLINE)) && break
			one_run "$(mnt_of c1)" || { pb_say "$sys R=$r run $run stopped early"; break; }
		done
	else
		pb_say "$sys R=$r: the first mount failed"
		echo "$sys,$r,0,mount,,,,,,error" >>"$OUT/runs.csv"
		FAILS=$((FAILS + 1))
	fi
	umount_client c1
	umount_client c2
	rss_sample
	rss_flush "$sys" "$r"
	"${sys}_stop"
	# Keep the logs of this system, then free its disk space.
	mkdir -p "$OUT/logs/$sys-r$r"
	find "$WORK/$sys" -maxdepth 3 -name '*.log' -size -20M -exec cp -t "$OUT/logs/$sys-r$r" {} + 2>/dev/null
	find "$WORK/$sys" -path '*/log/*' -name '*.log' -size -20M -exec cp --backup=numbered \
		-t "$OUT/logs/$sys-r$r" {} + 2>/dev/null
	rm -rf "${WORK:?}/$sys"
}

micro() {
	local f
	f=$(find_bin pifs-bench-frame) && "$f" 4096 $((QUICK ? 1 : 2)) >"$OUT/micro_frame.csv" ||
		pb_say "pifs-bench-frame failed or is not built"
	f=$(find_bin pifs-bench-rpc) && timeout 60 "$f" $((QUICK ? 1 : 2)) >"$OUT/micro_rpc.csv" ||
		pb_say "pifs-bench-rpc failed or is not built"
	find_bin pifs-mount-null >/dev/null &&
		PIFS_BIN=$BIN timeout 600 "$HERE/null.sh" --size $((QUICK ? 256 : 1024)) \
			>"$OUT/micro_null.txt" 2>&1 ||
		pb_say "null.sh (the client's ceiling) failed or pifs-mount-null is not built"
}

machine_info() {
	{
		echo "date: $(date -u +%FT%TZ)"
		echo "command: bench/run.sh $ARGS"
		echo "kernel: $(uname -srm)"
		echo "cpu: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo) x $(nproc)"
		echo "memory: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
		echo "disk: $(df -h --output=source,fstype,size "$(dirname "$WORK")" | tail -1)"
		echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
		echo "sizes: SIZE=${SIZE}MiB FILES=$NFILES x $FILE_SIZE B, two readers 2 x ${TWO}MiB, runs $RUNS"
		echo "glusterfs: $(dpkg-query -W -f '${Version}' glusterfs-server 2>/dev/null)"
		echo "moosefs: $(dpkg-query -W -f '${Version}' moosefs-master 2>/dev/null)"
		echo "pifs: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null) + working tree"
		echo "switch: tbf rate $PB_RATE burst $PB_BURST latency $PB_LATENCY, gso_max_segs $PB_GSO_SEGS, TSO/GSO $PB_OFFLOAD, GRO off, no netem (no added delay)"
	} >"$OUT/info.txt"
}

main() {
	mkdir -p "$OUT"
	ARGS=$(printf '%s ' "${ORIG_ARGS[@]}")
	echo "system,replicas,run,workload,unit,value,seconds,bytes,cpu_s,status" >"$OUT/runs.csv"
	echo "system,replicas,run,workload,ns,out_bytes,in_bytes" >"$OUT/links.csv"
	echo "system,replicas,ns,process,vmhwm_kib" >"$OUT/rss.csv"
	trap cleanup EXIT
	trap 'pb_say "interrupted: cleaning up"; exit 130' INT TERM
	need_packages
	build_drivers
	machine_info
	rm -rf "$WORK" "$SHM"
	mkdir -p "$WORK" "$SHM"

	if [[ -n $MOUNT ]]; then
		mountpoint -q "$MOUNT" || pb_say "warning: $MOUNT is not a mount point"
		SYS=mount R=0
		for ((RUN = 1; RUN <= RUNS; RUN++)); do
			one_run "$MOUNT" || break
		done
	else
		local sys r
		pb_up "$NSTORAGE" "$NCLIENTS"
		PB_NS_LIST=()
		for ((r = 1; r <= NSTORAGE; r++)); do PB_NS_LIST+=("$PB_PREFIX-s$r"); done
		for ((r = 1; r <= NCLIENTS; r++)); do PB_NS_LIST+=("$PB_PREFIX-c$r"); done
		echo "pair,mbit_s" >"$OUT/iperf.csv"
		echo "c1->s1,$(pb_iperf "$PB_PREFIX-s1" "$PB_PREFIX-c1" 5)" >>"$OUT/iperf.csv"
		echo "s2->c2,$(pb_iperf "$PB_PREFIX-c2" "$PB_PREFIX-s2" 5)" >>"$OUT/iperf.csv"
		pb_say "link goodput: $(tail -n +2 "$OUT/iperf.csv" | tr '\n' ' ') (Mbit/s)"
		for r in ${REPLICAS//,/ }; do
			[[ $r =~ ^[1-9]$ ]] && ((r <= NSTORAGE)) ||
				{ pb_say "skipping replicas '$r': 1 to $NSTORAGE"; continue; }
			for sys in ${SYSTEMS//,/ }; do
				case $sys in
				pifs | glusterfs | moosefs) ;;
				*) pb_say "unknown system '$sys' (pifs, glusterfs, moosefs)"; continue ;;
				esac
				((SECONDS > DEADLINE)) && break 2
				run_system "$sys" "$r"
			done
		done
	fi
	micro
	echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/info.txt"
	cleanup
	python3 "$HERE/report.py" "$OUT" || pb_say "report.py failed: the CSVs are in $OUT"
	pb_say "done in $((SECONDS / 60)) min, $FAILS failures; results in $OUT"
}

main
