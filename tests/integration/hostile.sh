#!/usr/bin/env bash
# hostile.sh - a hostile peer costs the nodes nothing. it_hostile sends
# 10,000 bad connections over the three nodes: garbage, truncated ZMTP
# greetings, frames claiming 2^62 bytes, handshakes with keys the cluster
# never made and without CURVE, messages over the size limit and pifs
# messages with absurd lengths (with the client key), and a flood of
# connections from one address. Each daemon's open descriptors, threads and
# resident memory stay where they were. Then, under more of it, a mount
# copies files: the copy completes intact and every node stays up.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
: "${PIFS_HOSTILE:?PIFS_HOSTILE must name the it_hostile binary (ctest sets it)}"

# Under AddressSanitizer freed memory waits in a quarantine before reuse and
# its allocator keeps what it had: a small quarantine, and a wider margin
# (the plain build is held to 3%).
RSS_PCT=3
if ldd "$STORAGED" 2>/dev/null | grep -q libasan; then
	export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4
	RSS_PCT=25
fi
# Heal passes every 2 s: the first ones open the nodes' sockets to each
# other during the warm-up, not during the measured round.
it_setup --nodes 3 --replicas 2 --set heal_interval=2s

# usage NODE: "rss_kib fds threads established" of node NODE's daemon, the
# last its established TCP connections (once it_hostile has exited, all of
# them the cluster's own: the mount's, the other nodes').
usage() {
	local pid
	pid=$(<"$CLUSTER/run/node$1.pid")
	printf '%s %s %s %s\n' "$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")" \
		"$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 | wc -l)" \
		"$(awk '/^Threads:/ { print $2 }' "/proc/$pid/status")" \
		"$(ss -tnpH state established | grep -c "pid=$pid," || true)"
}

# copy_files PREFIX: 40 files of 1 MiB into the mount, one every 0.2 s (a
# mount's steady writing), checked after.
copy_files() {
	local i
	mkdir -p "$MNT/$1"
	for i in $(seq 1 40); do
		head -c $((1 << 20)) /dev/urandom >"$WORK/src/$1-$i"
	done
	(
		for i in $(seq 1 40); do
			cp "$WORK/src/$1-$i" "$MNT/$1/$i" || exit 1
			sleep 0.2
		done
	) &
	copier=$!
}

check_files() {
	local i
	for i in $(seq 1 40); do
		assert_files_same "$MNT/$1/$i" "$WORK/src/$1-$i" "$1/$i, copied during an attack"
	done
}

# The daemons' connections and buffers grow with the mount's own traffic
# (a socket per mount thread, chunk buffers, the namespace itself): a first
# round of attack and copy brings them where they stay.
step "warming up: 1,000 bad connections while the mount copies 40 files"
mkdir -p "$WORK/src"
copy_files warm
"$PIFS_HOSTILE" -c "$CONF" -n 1000 -s 60 1 2 3 || fail "it_hostile failed to start"
wait "$copier" || fail "the copy failed during the warm-up attack"
check_files warm

# snapshot ARRAY: every node's usage into the associative array ARRAY, once
# the handshakes left hanging have timed out (5 s).
snapshot() {
	local -n into=$1
	local n
	sleep 7
	for n in 1 2 3; do
		into[$n]=$(usage "$n")
	done
}

# compare BEFORE AFTER STRICT WHAT: threads equal and no connection left
# half-closed; with STRICT 1 also descriptors within one and resident
# memory within RSS_PCT. Without it (a copy ran), they are shown only: the
# mount opens a connection per thread, more threads run while the nodes
# are slowed down, and the namespace and the buffers grow with the copy,
# as much as they do with no attack at all.
compare() {
	local -n b=$1 a=$2
	local n rss0 fd0 thr0 est0 rss1 fd1 thr1 est1 pid stale
	for n in 1 2 3; do
		read -r rss0 fd0 thr0 est0 <<<"${b[$n]}"
		read -r rss1 fd1 thr1 est1 <<<"${a[$n]}"
		step "node $n: rss $rss0 -> $rss1 KiB, fds $fd0 -> $fd1 (connections $est0 -> $est1), threads $thr0 -> $thr1 ($4)"
		assert_eq "$thr1" "$thr0" "node $n's thread count ($4)"
		if (($3)); then
			((fd1 <= fd0 + 1)) || fail "node $n holds $fd1 descriptors, $fd0 before ($4)"
			((rss1 <= rss0 + rss0 * RSS_PCT / 100)) ||
				fail "node $n's resident memory grew from $rss0 KiB to $rss1 KiB ($4)"
		fi
		# A connection the attacker closed and the node did not: none.
		pid=$(<"$CLUSTER/run/node$n.pid")
		stale=$(ss -tnpH state close-wait 2>/dev/null | grep -c "pid=$pid," || true)
		assert_eq "$stale" 0 "node $n's connections closed by their peer but not by the node"
	done
}

declare -A s0 s1 s2
snapshot s0
step "10,000 bad connections: what they cost the nodes"
start=$(date +%s)
"$PIFS_HOSTILE" -c "$CONF" -n 10000 -s 240 1 2 3 >"$WORK/attack.out" || fail "it_hostile failed"
cat "$WORK/attack.out"
step "the attack took $(($(date +%s) - start))s"
# The connections one address may hold: the node keeps 256 and shuts the
# others down. Here the cluster's own (the mount's, the other nodes') come
# from 127.0.0.1 too and count in the 256.
for n in 1 2 3; do
	kept=$(sed -n "s/^it_hostile: flood of node $n: \([0-9]*\) of 400.*/\1/p" "$WORK/attack.out")
	[[ -n $kept ]] || fail "it_hostile did not flood node $n"
	read -r _ _ _ own <<<"${s0[$n]}"
	# own counts the node's connections both ways; only those made to it
	# count in the bound.
	((kept <= 256 && kept >= 256 - own - 20)) ||
		fail "node $n kept $kept of 400 connections from one address, with $own of its cluster's (the bound is 256)"
	step "node $n kept $kept of 400 connections from the flooding address (its cluster has $own)"
done
snapshot s1
compare s0 s1 1 "after 10,000 tries"

step "3,000 more while the mount copies 40 more files"
copy_files during
"$PIFS_HOSTILE" -c "$CONF" -n 3000 -s 120 1 2 3 || fail "it_hostile failed"
wait "$copier" || fail "the copy failed while the nodes were under attack"
check_files during
check_files warm
snapshot s2
compare s1 s2 0 "after the copy under attack"
"$ADMIN" -c "$CONF" status >"$WORK/status" || fail "status after the attack: $(cat "$WORK/status")"
grep -q '^nodes: *3 up of 3$' "$WORK/status" || fail "not every node is up after the attack"
refused=$(sed -n 's/^security:.*; \([0-9]*\) requests or connections refused.*/\1/p' "$WORK/status")
((refused >= 1000)) || fail "the nodes counted $refused refusals: $(grep security "$WORK/status")"
step "the nodes refused $refused connections or requests"
