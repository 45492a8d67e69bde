#!/usr/bin/env bash
# hostile.sh - a hostile peer costs the nodes nothing. While a mount copies
# files, it_hostile sends 10,000 bad connections over the three nodes:
# garbage, truncated ZMTP greetings, frames claiming 2^62 bytes, handshakes
# with keys the cluster never made and without CURVE, messages over the size
# limit and pifs messages with absurd lengths (with the client key), and a
# flood of connections from one address. The copy completes intact, and each
# daemon's open descriptors, threads and resident memory stay where they were.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
: "${PIFS_HOSTILE:?PIFS_HOSTILE must name the it_hostile binary (ctest sets it)}"

it_setup --nodes 3 --replicas 2

# usage NODE: "rss_kib fds threads" of node NODE's daemon.
usage() {
	local pid
	pid=$(<"$CLUSTER/run/node$1.pid")
	printf '%s %s %s\n' "$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")" \
		"$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 | wc -l)" \
		"$(awk '/^Threads:/ { print $2 }' "/proc/$pid/status")"
}

step "warming up: a first round of every kind, and some files"
mkdir -p "$WORK/src" "$MNT/before"
for i in $(seq 1 8); do
	head -c $((1 << 20)) /dev/urandom >"$WORK/src/f$i"
	cp "$WORK/src/f$i" "$MNT/before/f$i" || fail "the warm-up copy of f$i failed"
done
"$PIFS_HOSTILE" -c "$CONF" -n 1000 -s 60 1 2 3 || fail "it_hostile failed to start"
# Handshakes left hanging time out after 5 s.
sleep 7
declare -A before
for n in 1 2 3; do
	before[$n]=$(usage "$n")
	step "node $n before: rss KiB, fds, threads = ${before[$n]}"
done

step "10,000 bad connections while the mount copies 40 files"
for i in $(seq 1 40); do
	head -c $((1 << 20)) /dev/urandom >"$WORK/src/g$i"
done
mkdir -p "$MNT/during"
(
	for i in $(seq 1 40); do
		cp "$WORK/src/g$i" "$MNT/during/g$i" || exit 1
		sleep 0.2
	done
) &
copier=$!
start=$(date +%s)
"$PIFS_HOSTILE" -c "$CONF" -n 10000 -s 240 1 2 3 || fail "it_hostile failed"
wait "$copier" || fail "the copy failed while the nodes were under attack"
step "the attack took $(($(date +%s) - start))s"
for i in $(seq 1 40); do
	assert_files_same "$MNT/during/g$i" "$WORK/src/g$i" "g$i, copied during the attack"
done
for i in $(seq 1 8); do
	assert_files_same "$MNT/before/f$i" "$WORK/src/f$i" "f$i, copied before the attack"
done

step "the nodes hold what they held"
sleep 7
for n in 1 2 3; do
	read -r rss0 fd0 thr0 <<<"${before[$n]}"
	read -r rss1 fd1 thr1 <<<"$(usage "$n")"
	step "node $n after: rss $rss1 KiB (was $rss0), fds $fd1 (was $fd0), threads $thr1 (was $thr0)"
	assert_eq "$thr1" "$thr0" "node $n's thread count"
	# A descriptor or two may be a chunk file or a connection of the
	# copy's last seconds.
	((fd1 <= fd0 + 2)) || fail "node $n holds $fd1 descriptors, $fd0 before the attack"
	((rss1 <= rss0 + rss0 / 20 + 4096)) ||
		fail "node $n's resident memory grew from $rss0 KiB to $rss1 KiB"
done
"$ADMIN" -c "$CONF" status >"$WORK/status" || fail "status after the attack: $(cat "$WORK/status")"
grep -q '^nodes: *3 up of 3$' "$WORK/status" || fail "not every node is up after the attack"
refused=$(sed -n 's/^security:.*; \([0-9]*\) requests or connections refused.*/\1/p' "$WORK/status")
((refused >= 1000)) || fail "the nodes counted $refused refusals: $(grep security "$WORK/status")"
step "the nodes refused $refused connections or requests"
