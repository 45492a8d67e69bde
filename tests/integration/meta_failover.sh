#!/usr/bin/env bash
# meta_failover.sh - kill -9 of the metadata leader, again and again, under
# a storm of creates and renames from two mounts of one cluster (3 nodes, 3
# voters, R=2): every create that returned success is there exactly once
# (under its new name if its rename returned success), with its content,
# and both mounts list the same tree. And a 64 MiB read that the loss of
# the leader interrupts completes with the right checksum.
# PIFS_QUICK=1: 5 rounds instead of 20.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=20
[[ -n ${PIFS_QUICK:-} ]] && ROUNDS=5
# Each storm stops at whichever comes first: this many files, this long,
# or the end of the rounds.
STORM_MAX=3000
STORM_SECS=$((ROUNDS * 20 + 60))

it_seed
it_setup --nodes 3 --voters 3 --replicas 2 --set down_after=2s --set client.timeout=5s
M2=$WORK/m2
it_mount "$M2"
meta_wait_leader 30
assert_eq "$(meta_voters)" "1 2 3" "voters of a cluster made with --voters 3"

# kill_leader: kill -9 the leader that answers now; its id into KILLED.
kill_leader() {
	meta_wait_leader 30
	KILLED=$META_LEADER
	"$PIFS_LOCAL" stop "$CLUSTER" "$KILLED" --kill >/dev/null || fail "pifs-local stop --kill of node $KILLED failed"
}

# restart_killed: start node KILLED again and wait until every voter follows.
restart_killed() {
	"$PIFS_LOCAL" start "$CLUSTER" "$KILLED" >/dev/null || fail "pifs-local start of node $KILLED failed"
	it_wait_until 60 "node $KILLED back among the voters" meta_all_up
}

step "a 64 MiB read through the loss of the leader"
head -c $((64 << 20)) /dev/urandom >"$WORK/big"
want=$(sha256sum <"$WORK/big" | cut -d' ' -f1)
dd if="$WORK/big" of="$MNT/big" bs=1M conv=fsync status=none || fail "writing $MNT/big failed"
# One open, read 1 MiB every 50 ms from the other mount (whose caches have
# none of it), so that the leader dies while the read goes on.
slow_read() {
	local i
	for ((i = 0; i < 64; i++)); do
		dd bs=1M count=1 iflag=fullblock status=none || return 1
		sleep 0.05
	done
}
(slow_read <"$M2/big" | sha256sum | cut -d' ' -f1 >"$WORK/big.sum") 2>"$WORK/big.err" &
READER=$!
sleep 1
kill -0 "$READER" 2>/dev/null || fail "the read of $M2/big ended within a second: the kill would not fall during it"
kill_leader
step "killed the leader, node $KILLED, during the read"
for ((t = 0; t < 1200; t++)); do
	kill -0 "$READER" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$READER" 2>/dev/null && fail "the read of $M2/big did not end within 120s of the kill"
wait "$READER" || fail "the read of $M2/big failed after the leader died: $(cat "$WORK/big.err")"
assert_eq "$(<"$WORK/big.sum")" "$want" "sha256 of $M2/big read through the loss of the leader"
restart_killed

# storm NAME ROOT: create NAME-I under ROOT/s (dd: write, fsync and close
# must all succeed) and rename every third file to NAME-I.r, until
# $WORK/stop appears, STORM_MAX files or STORM_SECS; log to $WORK/NAME.ok
# "C NAME-I" for each create and "R NAME-I" for each rename that returned
# success; a failure is recorded in $WORK/NAME.err.
storm() {
	local name=$1 root=$2 i f end=$((SECONDS + STORM_SECS))
	for ((i = 0; i < STORM_MAX && SECONDS < end; i++)); do
		[[ -e $WORK/stop ]] && break
		f=$name-$i
		if dd of="$root/s/$f" conv=fsync status=none 2>>"$WORK/$name.err" <<<"$f"; then
			echo "C $f" >>"$WORK/$name.ok"
		fi
		if ((i % 3 == 2)); then
			f=$name-$((i - 1))
			if mv -T -- "$root/s/$f" "$root/s/$f.r" 2>>"$WORK/$name.err"; then
				echo "R $f" >>"$WORK/$name.ok"
			fi
		fi
	done
}

step "$ROUNDS rounds of kill -9 of the leader under creates and renames from two mounts"
mkdir "$MNT/s" || fail "mkdir $MNT/s failed"
: >"$WORK/a.ok"
: >"$WORK/b.ok"
storm a "$MNT" &
STORM_A=$!
storm b "$M2" &
STORM_B=$!
ok_count() { cat "$WORK/a.ok" "$WORK/b.ok" | wc -l; }
for ((k = 1; k <= ROUNDS; k++)); do
	before=$(ok_count)
	kill_leader
	it_rand 300 2000
	sleep "$((REPLY / 1000)).$(printf %03d $((REPLY % 1000)))"
	meta_wait_leader 30 "$KILLED"
	step "round $k: killed node $KILLED, node $META_LEADER leads; $before operations succeeded so far"
	restart_killed
done
touch "$WORK/stop"
for pid in "$STORM_A" "$STORM_B"; do
	for ((t = 0; t < 600; t++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && fail "a storm did not stop within 60s of being told to"
	wait "$pid" || fail "a storm ended with status $?"
done
total=$(ok_count)
step "the storms are over: $total operations succeeded, $(cat "$WORK/a.err" "$WORK/b.err" 2>/dev/null | wc -l) error lines from failed ones"
cat "$WORK/a.err" "$WORK/b.err" 2>/dev/null | sort | uniq -c | head -n 20
((total >= ROUNDS * 3)) || fail "only $total operations succeeded in $ROUNDS rounds: metadata was not served between the kills"
# Two voters of three stay up throughout: the kills may pause metadata
# operations (an election), never fail them. An fsync may fail with EIO,
# honestly, when every node that stored a chunk was killed before it could
# sync it (a chunk written while its other owner was down): that is the
# data path, not the metadata, and says so rather than lose it silently
# (at the fsync, and again at the close of the same file).
cat "$WORK/a.err" "$WORK/b.err" 2>/dev/null | sed -n "s/^dd: fsync failed for '\(.*\)': Input\/output error$/\1/p" >"$WORK/eio"
meta_errors=$(cat "$WORK/a.err" "$WORK/b.err" 2>/dev/null |
	grep -v -F -f <(sed "s/.*/'&': Input\/output error/" "$WORK/eio") || true)
[[ -z $meta_errors ]] || fail "metadata operations failed while a majority of the voters was up:"$'\n'"$meta_errors"
echo "after the storms" >"$MNT/s/last" || fail "a create after the last round failed"

step "both mounts list the same tree"
same_listing() {
	ls -1A "$MNT/s" | sort >"$WORK/list.a" && ls -1A "$M2/s" | sort >"$WORK/list.b" &&
		cmp -s "$WORK/list.a" "$WORK/list.b"
}
# The kernel may keep a directory's entries for its entry timeout.
it_wait_until 15 "the same listing of s/ on both mounts" same_listing
dups=$(uniq -d "$WORK/list.a" | head -n 5)
[[ -z $dups ]] || fail "names listed twice in s/:"$'\n'"$dups"

step "every create that succeeded is there exactly once, with its content"
declare -A listed renamed
while read -r f; do listed[$f]=1; done <"$WORK/list.a"
while read -r op f; do [[ $op == R ]] && renamed[$f]=1; done < <(cat "$WORK/a.ok" "$WORK/b.ok")
bad=0
while read -r op f; do
	[[ $op == C ]] || continue
	old=${listed[$f]:-0}
	new=${listed[$f.r]:-0}
	if [[ -n ${renamed[$f]:-} ]]; then
		if ((old || !new)); then
			echo "  $f: its rename succeeded, but s/ has $f: $old, $f.r: $new"
			bad=$((bad + 1))
			continue
		fi
	elif ((old + new != 1)); then
		# A rename that failed may still have been made: either name, not both.
		echo "  $f: created, but s/ has $f: $old, $f.r: $new"
		bad=$((bad + 1))
		continue
	fi
	name=$f
	((new)) && name=$f.r
	for root in "$MNT" "$M2"; do
		got=$(<"$root/s/$name") || got="(unreadable)"
		if [[ $got != "$f" ]]; then
			echo "  $root/s/$name: holds '$got', not '$f'"
			bad=$((bad + 1))
		fi
	done
done < <(cat "$WORK/a.ok" "$WORK/b.ok")
((bad == 0)) || fail "$bad successful creates or renames are missing, doubled or wrong (above)"
assert_eq "$(sha256sum <"$MNT/big" | cut -d' ' -f1)" "$want" "sha256 of $MNT/big after the rounds"
it_umount "$M2"
