# lib.sh - shared by the integration tests (sourced, not run).
# shellcheck shell=bash
#
# it_setup starts a fresh cluster with tools/pifs-local in a new work
# directory; the EXIT/INT/TERM trap set there unmounts and stops everything the
# test started, whether it passed or failed, and fails the test when a daemon
# log holds a sanitizer report. Needs PIFS_BIN (the build directory: ctest sets
# it); PIFS_TEST_BASE_PORT (default 17300) is where the port search starts;
# PIFS_KEEP=1 keeps the work directory for a post-mortem.
set -euo pipefail

IT_NAME=$(basename "${BASH_SOURCE[1]:-$0}" .sh)
IT_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
: "${PIFS_BIN:?PIFS_BIN must name the build directory (ctest sets it)}"
export PIFS_BIN
PIFS_LOCAL=$IT_SRC/tools/pifs-local
ADMIN=$PIFS_BIN/tools/pifs-admin
STORAGED=$PIFS_BIN/storaged/pifs-storaged
MOUNT=$PIFS_BIN/client/pifs-mount

WORK=
CLUSTER=
CONF=
MNT=
IT_MOUNTS=()	# extra mounts: "DIR PID"

step() { printf '[%s] %s: %s\n' "$(date +%T)" "$IT_NAME" "$*"; }

fail() {
	printf '[%s] %s: FAIL: %s\n' "$(date +%T)" "$IT_NAME" "$*" >&2
	exit 1
}

# assert_eq ACTUAL EXPECTED WHAT
assert_eq() {
	[[ $1 == "$2" ]] || fail "$3: expected '$2', got '$1'"
}

# assert_files_same FILE_A FILE_B WHAT: byte for byte.
assert_files_same() {
	cmp -s -- "$1" "$2" || fail "$3: $1 and $2 differ ($(cmp -- "$1" "$2" 2>&1 | head -1))"
}

# assert_within VALUE TARGET PERCENT WHAT: |VALUE - TARGET| <= PERCENT% of TARGET.
assert_within() {
	local v=$1 t=$2 pct=$3 d
	d=$((v > t ? v - t : t - v))
	((d * 100 <= t * pct)) || fail "$4: $v is not within $pct% of $t (off by $d)"
}

# json_num JSON KEY: the first integer or decimal value of KEY (pifs-admin
# prints top-level figures before the node list, so the first is the cluster's).
json_num() {
	local v
	v=$(awk -v k="\"$2\":" '{
		i = index($0, k)
		if (i) { s = substr($0, i + length(k)); match(s, /^[0-9.]+/); print substr(s, 1, RLENGTH); exit }
	}' <<<"$1")
	[[ -n $v ]] || fail "pifs-admin's JSON has no number for \"$2\": $1"
	echo "$v"
}

require_bins() {
	local b
	for b in "$ADMIN" "$STORAGED" "$MOUNT"; do
		[[ -x $b ]] || fail "$b is missing: build the tree first (cmake --build $PIFS_BIN)"
	done
	[[ -c /dev/fuse ]] || fail "/dev/fuse is missing: this machine cannot mount FUSE (modprobe fuse)"
}

# Is DIR a mount point in this mount namespace (even a dead FUSE mount)?
it_mounted() {
	awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/self/mounts
}

# it_workdir: a fresh work directory, removed (after unmounting whatever is
# mounted under it) when the test ends.
it_workdir() {
	require_bins
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/pifs-it-$IT_NAME.XXXXXX")
	trap it_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# it_setup [pifs-local up options]: a fresh cluster of chunk size 1M, mounted.
it_setup() {
	it_workdir
	CLUSTER=$WORK/cluster
	CONF=$CLUSTER/pifs.conf
	MNT=$CLUSTER/mnt
	step "starting a cluster in $CLUSTER ($*)"
	"$PIFS_LOCAL" up "$CLUSTER" --chunk-size 1M --base-port "${PIFS_TEST_BASE_PORT:-17300}" "$@" ||
		fail "pifs-local up failed (its messages are above)"
	mountpoint -q "$MNT" || fail "pifs-local up returned but $MNT is not mounted"
}

# it_mount DIR: one more pifs-mount of the cluster, in the foreground mode, in the background.
it_mount() {
	local dir=$1 pid i
	mkdir -p "$dir"
	"$MOUNT" -c "$CONF" -f "$dir" </dev/null >>"$CLUSTER/log/mount-$(basename "$dir").log" 2>&1 &
	pid=$!
	IT_MOUNTS+=("$dir $pid")
	for ((i = 0; i < 150; i++)); do
		mountpoint -q "$dir" && return 0
		kill -0 "$pid" 2>/dev/null ||
			fail "pifs-mount of $dir exited before mounting: $(tail -n 5 "$CLUSTER/log/mount-$(basename "$dir").log")"
		sleep 0.1
	done
	fail "pifs-mount of $dir did not mount within 15s"
}

# it_umount DIR: unmount an it_mount and wait for its pifs-mount to exit.
it_umount() {
	local dir=$1 e pid i
	fusermount3 -u "$dir" || fail "fusermount3 -u $dir failed"
	for e in "${IT_MOUNTS[@]}"; do
		[[ ${e% *} == "$dir" ]] || continue
		pid=${e##* }
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && fail "pifs-mount of $dir (pid $pid) still runs 10s after its unmount"
		wait "$pid" || fail "pifs-mount of $dir exited with status $? after fusermount3 -u (expected 0)"
	done
	return 0
}

# Print the lines of the daemon logs that a sanitizer or a crash left there.
it_log_problems() {
	local f
	for f in "$CLUSTER"/log/*.log; do
		[[ -f $f ]] || continue
		grep -n -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (Address|Undefined|Leak)' \
			"$f" | sed "s|^|$f:|" | head -n 20 || true
	done
}

it_cleanup() {
	local rc=$? e dir pid problems
	trap - EXIT INT TERM
	set +e
	cd /
	# Whatever the test left running in the background (it_mount included).
	for e in "${IT_MOUNTS[@]}"; do
		dir=${e% *}
		pid=${e##* }
		if it_mounted "$dir"; then
			fusermount3 -u "$dir" 2>/dev/null || fusermount3 -uz "$dir"
		fi
		kill -TERM "$pid" 2>/dev/null && sleep 0.5
		kill -KILL "$pid" 2>/dev/null
	done
	if [[ -n $CLUSTER && -d $CLUSTER ]]; then
		# A test may have stopped a daemon with SIGSTOP: it must hear SIGTERM.
		for e in "$CLUSTER"/run/*.pid; do
			[[ -f $e ]] && kill -CONT "$(<"$e")" 2>/dev/null
		done
		if ! "$PIFS_LOCAL" down "$CLUSTER"; then
			echo "$IT_NAME: pifs-local down failed; forcing the unmount" >&2
			fusermount3 -uz "$MNT"
			"$PIFS_LOCAL" down "$CLUSTER"
		fi
		problems=$(it_log_problems)
		if [[ -n $problems ]]; then
			printf '%s: FAIL: a daemon reported a memory or UB error:\n%s\n' "$IT_NAME" "$problems" >&2
			rc=1
		fi
		if ((rc != 0)); then
			for e in "$CLUSTER"/log/*.log; do
				[[ -f $e ]] || continue
				printf -- '--- last lines of %s ---\n' "$e" >&2
				tail -n 30 "$e" >&2
			done
		fi
	fi
	if [[ -n $WORK ]]; then
		# Mounts the test made by other means (or that a bug made).
		while read -r dir; do
			echo "$IT_NAME: unmounting $dir, left mounted" >&2
			fusermount3 -u "$dir" 2>/dev/null || fusermount3 -uz "$dir"
		done < <(awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/self/mounts)
		if grep -q " $WORK/" /proc/self/mounts; then
			echo "$IT_NAME: something is still mounted under $WORK: leaving it in place" >&2
			rc=1
		elif [[ -n ${PIFS_KEEP:-} ]]; then
			echo "$IT_NAME: kept $WORK (PIFS_KEEP is set)"
		else
			rm -rf "$WORK"
		fi
	fi
	if ((rc == 0)); then
		step "passed"
	else
		printf '%s: failed (status %d)\n' "$IT_NAME" "$rc" >&2
	fi
	exit "$rc"
}

# The pids whose command line mentions STRING (procps may not be installed).
it_pids_using() {
	local f
	local cmd
	for f in /proc/[0-9]*/cmdline; do
		cmd=$(tr '\0' ' ' <"$f" 2>/dev/null) || continue
		[[ $cmd == *"$1"* ]] || continue
		f=${f#/proc/}
		echo "${f%/cmdline}"
	done
}

# sha256 of every regular file under DIR, by relative path, sorted.
it_manifest() {
	(cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum)
}

# Type, permissions, mtime (ns), size and symlink target of every entry under
# DIR; no size for directories, whose size each file system counts its own way.
it_tree_listing() {
	(cd "$1" && {
		find . -mindepth 1 -type d -printf '%y %m %T@ %p\n'
		find . -mindepth 1 ! -type d -printf '%y %m %T@ %s %p -> %l\n'
	} | sort)
}
