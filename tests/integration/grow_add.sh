#!/usr/bin/env bash
# grow_add.sh - add a 4th node to 3 (R=2, 300 files, 256 KiB chunks): the
# dry-run plan matches the bytes moved within 5%; at most 1.3x the ideal
# quarter of the stored bytes moves; a reader checking every file during the
# rebalance never fails; after it, every file is identical and every chunk
# has 2 copies, a quarter of them on the new node.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=300
it_seed
it_setup --nodes 3 --replicas 2 --chunk-size 256K --set heal_interval=1h

step "writing $N files of 4 KiB .. 640 KiB"
it_make_files "$WORK/src" "$N" 4096 $((640 << 10))
cp -r "$WORK/src" "$MNT/d" || fail "copying the files in failed"
sync
it_manifest "$MNT" >"$WORK/manifest"
assert_eq "$(wc -l <"$WORK/manifest")" "$N" "files in the manifest"
it_admin heal --wait --timeout 60s >/dev/null || fail "the first heal did not end clean"
it_check_copies 2 1 2 3
stored=$((0 + $(it_node_bytes 1) + $(it_node_bytes 2) + $(it_node_bytes 3)))
step "stored: $stored bytes in $(it_copies 1 2 3 | wc -l) chunks"

step "adding node 4"
it_add_node --weight 100
it_admin nodes | tee "$WORK/nodes"
grep -q "new (not admitted: pifs-admin node add $NODE_ADDR)" "$WORK/nodes" ||
	fail "nodes does not show node $NODE_ID as new and not admitted"
assert_eq "$(it_node_chunks "$NODE_ID")" 0 "chunks on the new node before it is admitted"
it_admin node add "$NODE_ADDR" --weight 100 >"$WORK/add.out" || fail "node add exited $?"
assert_eq "$(head -n 1 "$WORK/add.out")" "$NODE_ID" "the id node add prints"

step "the plan"
it_admin rebalance --dry-run | tee "$WORK/plan"
plan=$(it_admin rebalance --dry-run --json) || fail "rebalance --dry-run --json exited $?"
plan_bytes=$(json_num "$plan" bytes)
((plan_bytes > 0)) || fail "the plan moves nothing after adding a node: $plan"
grep -q "^  total " "$WORK/plan" || fail "the plan has no total line"
grep -q "time at the throttle" "$WORK/plan" || fail "the plan gives no time at the throttle"
grep -q "time at the measured link speed" "$WORK/plan" || fail "the plan gives no time at the link speed"
assert_eq "$(it_node_chunks "$NODE_ID")" 0 "chunks on node $NODE_ID after a dry run"

step "rebalance --limit 4 --wait, a reader checking every file meanwhile"
before=$(it_moved)
: >"$WORK/reader.err"
it_reader "$WORK/manifest" "$WORK/reader.err" &
READER=$!
timeout 120 "$ADMIN" -c "$CONF" rebalance --wait --limit 4 --timeout 100s ||
	fail "rebalance --wait exited $?"
kill "$READER" 2>/dev/null
wait "$READER" 2>/dev/null || true
passes=$(wc -l <"$WORK/reader.err.passes")
[[ -s $WORK/reader.err ]] && fail "the reader failed during the rebalance:"$'\n'"$(head -n 20 "$WORK/reader.err")"
((passes >= 1)) || fail "the reader did not finish a single pass during the rebalance"
moved=$(($(it_moved) - before))
step "plan $plan_bytes bytes, moved $moved bytes, ideal $((stored / 4)), reader passes $passes"
assert_within "$moved" "$plan_bytes" 5 "bytes moved against the plan"
((moved * 10 <= stored / 4 * 13)) || fail "moved $moved bytes, more than 1.3x the ideal $((stored / 4))"

step "after: files, copies, the new node's share"
it_check_manifest "$MNT" "$WORK/manifest" "after the rebalance"
it_check_copies 2 1 2 3 "$NODE_ID"
share=$(it_node_bytes "$NODE_ID")
assert_within "$share" $((stored / 4)) 30 "bytes on the new node against a quarter of the stored bytes"
plan=$(it_admin rebalance --dry-run --json)
assert_eq "$(json_num "$plan" bytes)" 0 "bytes a plan moves after the rebalance"
