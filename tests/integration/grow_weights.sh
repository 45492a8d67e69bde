#!/usr/bin/env bash
# grow_weights.sh - weighted placement: 3 nodes of weights 1, 1, 2 (made so
# with node set-weight and rebalance after the data is in), 3072 chunks of
# 64 KiB: each node's share of the stored bytes is within 10% of its weight's
# share. One copy of each chunk (R=1): with R copies a node holds at most one
# of each chunk's, so no weight can give it more than 1/R of the bytes, and
# the shares of R=2 on three nodes of weights 1, 1, 2 are 7/24, 7/24, 10/24.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

it_seed
it_setup --nodes 3 --replicas 1 --chunk-size 64K --set heal_interval=1h

step "writing 48 files of 4 MiB that do not compress (3072 chunks)"
mkdir -p "$MNT/d"
for ((i = 0; i < 48; i++)); do
	head -c $((4 << 20)) /dev/urandom >"$WORK/f" || fail "making a source file failed"
	cp "$WORK/f" "$MNT/d/f$i" || fail "writing d/f$i failed"
done
sync
it_manifest "$MNT" >"$WORK/manifest"
chunks=$(it_copies 1 2 3 | wc -l)
((chunks >= 3072)) || fail "only $chunks chunks stored, expected 3072"

step "weights 100, 100, 200; rebalance --wait"
it_admin node set-weight 3 200 || fail "node set-weight exited $?"
it_admin nodes | tee "$WORK/nodes"
grep -qE '^3 .* 200 ' "$WORK/nodes" || fail "nodes does not show weight 200 for node 3"
timeout 200 "$ADMIN" -c "$CONF" rebalance --wait --timeout 180s || fail "rebalance --wait exited $?"

b1=$(it_node_bytes 1)
b2=$(it_node_bytes 2)
b3=$(it_node_bytes 3)
total=$((b1 + b2 + b3))
step "bytes per node: $b1 $b2 $b3 of $total"
assert_within "$b1" $((total / 4)) 10 "node 1's bytes against its weight's share (1/4)"
assert_within "$b2" $((total / 4)) 10 "node 2's bytes against its weight's share (1/4)"
assert_within "$b3" $((total / 2)) 10 "node 3's bytes against its weight's share (1/2)"
it_check_manifest "$MNT" "$WORK/manifest" "after the rebalance"
