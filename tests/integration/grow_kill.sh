#!/usr/bin/env bash
# grow_kill.sh - kill -9 of a storage daemon in the middle of a rebalance (a
# 4th node added to 3, R=2, throttled so that it takes a while): the running
# 'pifs-admin rebalance --wait' keeps following, the restarted node resumes
# by itself, the command finishes, and nothing is lost.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=150
it_seed
it_setup --nodes 3 --replicas 2 --chunk-size 256K --set heal_interval=1h \
	--set client.timeout=2s
it_rand 2 3
VICTIM=$REPLY

step "writing $N files of 64 KiB .. 640 KiB that do not compress"
mkdir -p "$WORK/src"
for ((i = 0; i < N; i++)); do
	it_rand $((64 << 10)) $((640 << 10))
	it_make_file "$WORK/src/f$i" "$REPLY" 0
done
cp -r "$WORK/src" "$MNT/d" || fail "copying the files in failed"
sync
it_manifest "$MNT" >"$WORK/manifest"

step "adding node 4; rebalance --wait at 2 MB/s per node in the background"
it_add_node --weight 100
it_admin node add "$NODE_ADDR" --weight 100 >/dev/null || fail "node add exited $?"
plan=$(it_admin rebalance --dry-run --json) || fail "rebalance --dry-run exited $?"
plan_bytes=$(json_num "$plan" bytes)
((plan_bytes > 6 << 20)) || fail "the plan moves only $plan_bytes bytes: too little to kill a node in the middle"
"$ADMIN" -c "$CONF" --timeout 2s rebalance --wait --limit 2 --timeout 150s >"$WORK/rebalance.out" 2>&1 &
REBALANCE=$!

step "kill -9 node $VICTIM once a sixth of the plan has moved"
for ((t = 0; t < 300; t++)); do
	(($(it_node_bytes "$NODE_ID") * 6 >= plan_bytes)) && break
	sleep 0.1
done
at=$(it_node_bytes "$NODE_ID")
((at < plan_bytes)) || fail "the rebalance ended before the kill ($at of $plan_bytes bytes on node $NODE_ID)"
"$PIFS_LOCAL" stop "$CLUSTER" "$VICTIM" --kill || fail "pifs-local stop --kill of node $VICTIM failed"
step "killed node $VICTIM with $at of $plan_bytes bytes on node $NODE_ID"
sleep 2
kill -0 "$REBALANCE" 2>/dev/null || fail "rebalance --wait ended while node $VICTIM was dead: $(cat "$WORK/rebalance.out")"
"$PIFS_LOCAL" start "$CLUSTER" "$VICTIM" || fail "pifs-local start of node $VICTIM failed"

step "the same rebalance --wait finishes"
rc=0
wait "$REBALANCE" || rc=$?
tail -n 5 "$WORK/rebalance.out"
assert_eq "$rc" 0 "exit status of rebalance --wait across the kill"
grep -q "^rebalance: done" "$WORK/rebalance.out" || fail "rebalance --wait did not say it was done"
timeout 60 "$ADMIN" -c "$CONF" rebalance --wait --timeout 50s >/dev/null 2>&1 || fail "a second rebalance --wait did not end clean"
plan=$(it_admin rebalance --dry-run --json)
assert_eq "$(json_num "$plan" bytes)" 0 "bytes a plan moves after the rebalance"

step "nothing lost: every file identical, every chunk 2 copies"
it_check_manifest "$MNT" "$WORK/manifest" "after kill -9 of node $VICTIM mid-rebalance"
it_check_copies 2 1 2 3 "$NODE_ID"
((($(it_node_bytes "$NODE_ID")) > 0)) || fail "node $NODE_ID holds nothing after the rebalance"
