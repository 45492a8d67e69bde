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
IT_ON_EXIT=()	# commands (function names) it_cleanup runs once the cluster is down
SEED=

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

# run EXPECTED_STATUS WHAT -- COMMAND...: run it (after it_workdir), keep its
# stdout and stderr in $WORK/out and $WORK/err, check its exit status.
run() {
	local want=$1 what=$2 rc=0
	shift 3
	"$@" </dev/null >"$WORK/out" 2>"$WORK/err" || rc=$?
	[[ $rc == "$want" ]] || {
		head -n 8 "$WORK/out" | sed 's/^/  stdout: /'
		head -n 8 "$WORK/err" | sed 's/^/  stderr: /'
		fail "$what: '$*' exited with $rc, expected $want"
	}
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
	# Other users must reach the mount below it: tests check what they may do there.
	chmod 755 "$WORK"
	CLUSTER=$WORK/cluster
	CONF=$CLUSTER/pifs.conf
	MNT=$CLUSTER/mnt
	trap it_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# it_setup [pifs-local up options]: a fresh cluster of chunk size 1M, mounted.
it_setup() {
	it_workdir
	it_up "$@"
}

# it_up [pifs-local up options]: start the cluster of it_workdir (which a
# test may prepare first: a tmpfs for a data directory, say).
it_up() {
	step "starting a cluster in $CLUSTER ($*)"
	"$PIFS_LOCAL" up "$CLUSTER" --chunk-size 1M --base-port "${PIFS_TEST_BASE_PORT:-17300}" "$@" ||
		fail "pifs-local up failed (its messages are above)"
	mountpoint -q "$MNT" || fail "pifs-local up returned but $MNT is not mounted"
}

# it_mount DIR [OPTION...]: one more pifs-mount of the cluster (with those
# options, such as -o key=NAME), in the foreground mode, in the background.
it_mount() {
	local dir=$1 pid i
	shift
	mkdir -p "$dir"
	"$MOUNT" -c "$CONF" -f "$@" "$dir" </dev/null >>"$CLUSTER/log/mount-$(basename "$dir").log" 2>&1 &
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
	# Background helpers of the test (writers, readers) first: they keep
	# files open in the mounts. The pifs-mounts are unmounted below.
	local mpids=" " helpers=()
	for e in "${IT_MOUNTS[@]}"; do
		mpids+="${e##* } "
	done
	for pid in $(jobs -p); do
		[[ $mpids == *" $pid "* ]] && continue
		kill -TERM "$pid" 2>/dev/null && helpers+=("$pid")
	done
	for pid in "${helpers[@]}"; do
		for ((e = 0; e < 50; e++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
	done
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
		for e in "${IT_ON_EXIT[@]}"; do
			"$e"
		done
		IT_ON_EXIT=()
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
	for e in "${IT_ON_EXIT[@]}"; do
		"$e"
	done
	if [[ -n $WORK ]]; then
		# Mounts the test made by other means (or that a bug made), the
		# deepest first: a FUSE mount left over, or a tmpfs under a data dir.
		while read -r e dir; do
			if [[ $e == fuse* ]]; then
				echo "$IT_NAME: unmounting $dir, left mounted" >&2
				fusermount3 -u "$dir" 2>/dev/null || fusermount3 -uz "$dir"
			else
				umount "$dir" 2>/dev/null || umount -l "$dir"
			fi
		done < <(awk -v w="$WORK/" 'index($2, w) == 1 { print length($2), $3, $2 }' /proc/self/mounts |
			sort -rn | cut -d' ' -f2-)
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

# ---- for the fault-injection tests ----

# it_seed: the seed of this run's random choices (PIFS_SEED, else from the
# clock), printed so that a failure can be replayed; seeds bash's RANDOM.
it_seed() {
	SEED=${PIFS_SEED:-$(($(date +%s%N) / 1000 % 1000000))}
	RANDOM=$SEED
	step "seed $SEED (run again with PIFS_SEED=$SEED to make the same choices)"
}

# it_rand LO HI: a number in [LO, HI] into REPLY, from the seeded RANDOM.
# Not a $(...) function: a subshell's RANDOM would not advance ours.
it_rand() {
	REPLY=$(($1 + (RANDOM * 32768 + RANDOM) % ($2 - $1 + 1)))
}

# it_make_file FILE SIZE KIND: SIZE bytes of random data (KIND 0: does not
# compress), base64 text (1: compresses a little) or repeated lines (2:
# compresses well).
it_make_file() {
	# No pipes: under pipefail, the writer's SIGPIPE would fail the test.
	case $3 in
	0) head -c "$2" /dev/urandom >"$1" ;;
	1)
		base64 -w 76 < <(head -c $(($2 * 3 / 4 + 3)) /dev/urandom) >"$1.tmp"
		truncate -s "$2" "$1.tmp"
		mv "$1.tmp" "$1"
		;;
	*)
		awk -v n="$2" -v f="$1" 'BEGIN {
			for (i = 0; s < n; i++) { l = sprintf("line %d of %s, much like the others\n", i, f); printf "%s", l; s += length(l) }
		}' >"$1.tmp"
		truncate -s "$2" "$1.tmp"
		mv "$1.tmp" "$1"
		;;
	esac
}

# it_make_files DIR N MIN MAX: N files DIR/f0.. of seeded sizes from MIN to
# MAX bytes, spread evenly over the powers of two between, of mixed kinds.
it_make_files() {
	local dir=$1 n=$2 min=$3 max=$4 i lo hi size
	mkdir -p "$dir"
	lo=0
	hi=0
	while (((1 << lo) < min)); do lo=$((lo + 1)); done
	while (((1 << hi) < max)); do hi=$((hi + 1)); done
	for ((i = 0; i < n; i++)); do
		it_rand "$lo" "$hi"
		size=$((1 << REPLY))
		it_rand "$((size / 2))" "$size"
		size=$REPLY
		((size < min)) && size=$min
		((size > max)) && size=$max
		it_rand 0 3
		it_make_file "$dir/f$i" "$size" "$((REPLY > 2 ? 0 : REPLY))"
	done
}

# it_admin ARGS...: pifs-admin on the test's cluster, with a short timeout.
it_admin() {
	"$ADMIN" -c "$CONF" --timeout 2s "$@"
}

# it_status_json: pifs-admin status --json (its exit status 3, degraded, is
# no failure here).
it_status_json() {
	local j rc=0
	j=$(it_admin status --json) || rc=$?
	((rc == 0 || rc == 3)) || fail "pifs-admin status --json exited $rc: $j"
	echo "$j"
}

# json_node JSON ID: the object of node ID in the nodes list of pifs-admin's JSON.
json_node() {
	# shellcheck disable=SC2001
	sed 's/{"id":/\n{"id":/g' <<<"$1" | grep "^{\"id\":$2," ||
		fail "pifs-admin's JSON has no node $2: $1"
}

# json_bool JSON KEY: the first true/false value of KEY.
json_bool() {
	local v
	v=$(grep -o "\"$2\":\(true\|false\)" <<<"$1" | head -1 | cut -d: -f2)
	[[ -n $v ]] || fail "pifs-admin's JSON has no boolean \"$2\": $1"
	echo "$v"
}

# it_wait_until SECONDS WHAT COMMAND...: run COMMAND every 0.2s until it
# succeeds; fail naming WHAT after SECONDS.
it_wait_until() {
	local secs=$1 what=$2 end
	shift 2
	end=$(($(date +%s%N) / 1000000 + secs * 1000))
	until "$@" >/dev/null 2>&1; do
		(($(date +%s%N) / 1000000 < end)) || fail "$what did not happen within ${secs}s"
		sleep 0.2
	done
}

# node_is ID STATE...: node ID has every STATE (up, down, in, out) in status.
node_is() {
	local id=$1 n s
	shift
	n=$(json_node "$(it_status_json)" "$id")
	for s in "$@"; do
		case $s in
		up) [[ $n == *'"up":true'* ]] || return 1 ;;
		down) [[ $n == *'"up":false'* ]] || return 1 ;;
		in) [[ $n == *'"in":true'* ]] || return 1 ;;
		out) [[ $n == *'"in":false'* ]] || return 1 ;;
		esac
	done
}

# it_flip_bit FILE OFFSET BIT: flip one bit of FILE in place.
it_flip_bit() {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	[[ -n $b ]] || fail "cannot read byte $2 of $1"
	# shellcheck disable=SC2059
	printf "\\$(printf %o $((b ^ (1 << $3))))" | dd of="$1" bs=1 seek="$2" count=1 conv=notrunc status=none ||
		fail "cannot write byte $2 of $1"
}

# it_drop_caches: make the daemons read chunk files from the disk again.
it_drop_caches() {
	sync
	{ echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null ||
		fail "cannot drop the page cache (echo 3 > /proc/sys/vm/drop_caches): this test needs root"
}

# it_chunk_file NODE ID: where node NODE keeps chunk ID (storaged/store.h).
it_chunk_file() {
	echo "$CLUSTER/node$1/chunks/${2:0:2}/${2:2:2}/$2"
}

# it_health FILE: the user.pifs.status of FILE.
it_health() {
	getfattr --absolute-names --only-values -n user.pifs.status "$1" 2>&1
}

# it_check_manifest ROOT MANIFEST WHAT: every "sha256  path" line of MANIFEST
# reads back identical under ROOT.
it_check_manifest() {
	local out
	out=$(cd "$1" && sha256sum --quiet -c "$2" 2>&1) ||
		fail "$3: files read back wrong or not at all:"$'\n'"$(head -n 20 <<<"$out")"
}

# ---- for the growing and shrinking tests ----

# it_copies NODE...: "COUNT ID" for every chunk on the given nodes, counting
# its chunk files over them (quarantined copies are not under chunks/).
it_copies() {
	local n
	for n in "$@"; do
		[[ -d $CLUSTER/node$n/chunks ]] || continue
		find "$CLUSTER/node$n/chunks" -type f -name '[0-9a-f]*' -printf '%f\n'
	done | grep -E '^[0-9a-f]{32}$' | sort | uniq -c
}

# it_check_copies R NODE...: every chunk on those nodes has exactly R copies.
it_check_copies() {
	local r=$1 bad total
	shift
	total=$(it_copies "$@" | wc -l)
	bad=$(it_copies "$@" | awk -v r="$r" '$1 != r' | head -n 5)
	((total > 0)) || fail "no chunk files at all on nodes $*"
	[[ -z $bad ]] || fail "chunks without exactly $r copies on nodes $* (count id):"$'\n'"$bad"
}

# it_node_chunks NODE: how many chunk files node NODE holds.
it_node_chunks() {
	it_copies "$1" | wc -l
}

# it_node_bytes NODE: the bytes of node NODE's chunk files.
it_node_bytes() {
	find "$CLUSTER/node$1/chunks" -type f -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'
}

# it_moved: bytes the nodes that are up copied (heal and rebalance) since they started.
it_moved() {
	json_num "$(it_status_json)" moved_bytes
}

# it_add_node [--weight W]: pifs-local add; its node id into NODE_ID.
it_add_node() {
	local out
	out=$("$PIFS_LOCAL" add "$CLUSTER" "$@" 2>"$WORK/add.err") ||
		fail "pifs-local add failed: $(cat "$WORK/add.err")"
	NODE_ID=$(tail -n 1 <<<"$out")
	[[ $NODE_ID =~ ^[0-9]+$ ]] || fail "pifs-local add printed '$out', not a node id"
	NODE_ADDR=$(awk -v id="$NODE_ID" '$1 == "[node" && $2 == id "]" { f = 1 } f && $1 == "address" { print $3; exit }' "$CONF")
	[[ -n $NODE_ADDR ]] || fail "pifs-local add wrote no [node $NODE_ID] address to $CONF"
}

# it_reader MANIFEST ERRFILE: check every file of MANIFEST under $MNT in a
# loop until killed, appending failures to ERRFILE (run it in the background).
it_reader() {
	local out
	while :; do
		out=$(cd "$MNT" && sha256sum --quiet -c "$1" 2>&1) || echo "$out" >>"$2"
		echo pass >>"$2.passes"
	done
}

# ---- for the replicated metadata tests ----

# meta_status_json: pifs-admin meta status --json, whatever its exit status
# (3: a voter down, 1: no leader); empty when no voter answered.
meta_status_json() {
	"$ADMIN" -c "$CONF" --timeout 2s meta status --json 2>/dev/null || true
}

# meta_leader: the id of the metadata leader that answers now, or nothing.
meta_leader() {
	sed -n 's/^{"leader":\([0-9][0-9]*\),.*/\1/p' <<<"$(meta_status_json)"
}

# meta_voters: the ids of the voters, as the leader lists them, space-separated.
meta_voters() {
	sed -n 's/.*"voters":\[\(.*\)\],"not_voters".*/\1/p' <<<"$(meta_status_json)" |
		grep -o '{"id":[0-9]*' | cut -d: -f2 | tr '\n' ' ' | sed 's/ $//'
}

# meta_wait_leader SECONDS [EXCEPT]: wait until a metadata leader answers,
# other than node EXCEPT when given; its id into META_LEADER.
meta_wait_leader() {
	local secs=$1 except=${2:-} end l
	end=$(($(date +%s%N) / 1000000 + secs * 1000))
	while :; do
		l=$(meta_leader)
		if [[ -n $l && $l != "$except" ]]; then
			META_LEADER=$l
			return 0
		fi
		(($(date +%s%N) / 1000000 < end)) ||
			fail "no metadata leader${except:+ other than node $except} within ${secs}s:"$'\n'"$("$ADMIN" -c "$CONF" --timeout 2s meta status 2>&1 | head -n 12)"
		sleep 0.2
	done
}

# meta_all_up: a leader answers and so does every voter (meta status exits 0).
meta_all_up() {
	"$ADMIN" -c "$CONF" --timeout 2s meta status >/dev/null 2>&1
}

# it_conf_meta ID yes|no: set "meta =" of [node ID] in the cluster's
# pifs.conf, as an operator does after pifs-admin meta add or remove so that
# clients started from then on look for the leader among the voters.
it_conf_meta() {
	awk -v id="$1" -v v="$2" '
		/^\[/ { in_node = ($0 == "[node " id "]") }
		in_node && /^meta[ \t]*=/ { $0 = "meta = " v }
		{ print }
	' "$CONF" >"$CONF.tmp" || fail "cannot edit $CONF"
	mv "$CONF.tmp" "$CONF" || fail "cannot replace $CONF"
	grep -A4 "^\[node $1\]" "$CONF" | grep -qx "meta = $2" || fail "$CONF: [node $1] has no 'meta =' line to set"
}
