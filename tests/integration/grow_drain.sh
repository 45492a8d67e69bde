#!/usr/bin/env bash
# grow_drain.sh - take a node out of 4 (R=2): remove before drain is refused
# with the reason; after drain and rebalance --wait the node holds no chunks,
# remove succeeds, and every file reads back identical with 2 copies of every
# chunk (user.pifs.status healthy).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=120
# Nodes 1..3 are the metadata voters (pifs-local's default): a voter leaves
# the voters (pifs-admin meta remove) before it can be drained.
VICTIM=4
it_seed
it_setup --nodes 4 --replicas 2 --chunk-size 256K --set heal_interval=1h

step "writing $N files of 4 KiB .. 512 KiB"
it_make_files "$WORK/src" "$N" 4096 $((512 << 10))
cp -r "$WORK/src" "$MNT/d" || fail "copying the files in failed"
sync
it_manifest "$MNT" >"$WORK/manifest"
held=$(it_node_chunks "$VICTIM")
((held > 0)) || fail "node $VICTIM holds no chunks before the drain: nothing to test"

step "remove before drain is refused, with the reason and what to run"
rc=0
it_admin node remove "$VICTIM" 2>"$WORK/remove.err" || rc=$?
cat "$WORK/remove.err"
assert_eq "$rc" 1 "exit status of node remove of a node holding $held chunks"
grep -q "still holds $held chunks" "$WORK/remove.err" || fail "the refusal does not say how many chunks node $VICTIM holds"
grep -q "node drain $VICTIM" "$WORK/remove.err" || fail "the refusal does not say to drain first"
grep -q "rebalance --wait" "$WORK/remove.err" || fail "the refusal does not say to rebalance"
rc=0
it_admin node remove 1 2>"$WORK/remove1.err" || rc=$?
assert_eq "$rc" 1 "exit status of node remove of the metadata voter"
grep -q "metadata voter" "$WORK/remove1.err" || fail "removing the voter is not refused as such: $(cat "$WORK/remove1.err")"
assert_eq "$(it_node_chunks "$VICTIM")" "$held" "chunks on node $VICTIM after the refusals"

step "drain node $VICTIM, rebalance --wait"
it_admin node drain "$VICTIM" || fail "node drain exited $?"
it_admin nodes | tee "$WORK/nodes"
grep -qE "^$VICTIM +127\.0\.0\.1:[0-9]+ +up +drain " "$WORK/nodes" || fail "nodes does not show node $VICTIM draining"
it_admin rebalance --dry-run | tee "$WORK/plan"
grep -q "^  total " "$WORK/plan" || fail "the plan after the drain moves nothing"
timeout 120 "$ADMIN" -c "$CONF" rebalance --wait --timeout 100s || fail "rebalance --wait exited $?"
assert_eq "$(it_node_chunks "$VICTIM")" 0 "chunks on node $VICTIM after the drain"
it_check_copies 2 1 2 3

step "remove node $VICTIM"
it_admin node remove "$VICTIM" || fail "node remove of the drained node exited $?"
it_admin nodes --json >"$WORK/nodes.json" || fail "nodes --json exited $?"
grep -q "\"id\":$VICTIM,\"address\":\"[^\"]*\",\"state\":\"up\"" "$WORK/nodes.json" &&
	fail "node $VICTIM is still in the cluster map after node remove"

step "every file identical and healthy, from a fresh mount"
it_mount "$WORK/m2"
it_check_manifest "$WORK/m2" "$WORK/manifest" "after drain and remove of node $VICTIM"
bad=0
while read -r _ path; do
	h=$(it_health "$WORK/m2/$path")
	if [[ $h != healthy:* ]]; then
		echo "  $path: $h"
		bad=$((bad + 1))
	fi
done <"$WORK/manifest"
((bad == 0)) || fail "$bad files are not healthy (user.pifs.status) after drain and remove"
it_umount "$WORK/m2"
