#!/usr/bin/env bash
# meta_quorum.sh - two of three metadata voters down: metadata operations
# wait, then fail with ETIMEDOUT and a message naming the voters, while a
# file opened before goes on being read; pifs-admin says that metadata is
# stopped and what to start (three replicas: every chunk keeps a copy on
# the node left). One voter back: a majority again, a leader
# within seconds, and everything written before is there.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

it_seed
it_setup --nodes 3 --voters 3 --replicas 3 --set down_after=2s

step "writing a file of 8 MiB, and opening it for reading"
it_make_file "$WORK/big" $((8 << 20)) 0
cp "$WORK/big" "$MNT/big" || fail "writing $MNT/big failed"
sync
# Every chunk on all three nodes before two of them go: a node that was
# still starting may have missed a copy, which heal then makes.
"$ADMIN" -c "$CONF" heal --wait --timeout 60s >/dev/null || fail "heal --wait exited $?"
it_check_copies 3 1 2 3
want=$(sha256sum <"$WORK/big" | cut -d' ' -f1)
exec {fd}<"$MNT/big" || fail "opening $MNT/big failed"

meta_wait_leader 30
LEADER=$META_LEADER
OTHER=$((LEADER % 3 + 1))
step "kill -9 of the leader (node $LEADER) and of node $OTHER: one voter of three left"
"$PIFS_LOCAL" stop "$CLUSTER" "$LEADER" --kill >/dev/null || fail "pifs-local stop --kill $LEADER failed"
"$PIFS_LOCAL" stop "$CLUSTER" "$OTHER" --kill >/dev/null || fail "pifs-local stop --kill $OTHER failed"

step "a create waits for a leader, then fails"
t0=$SECONDS
rc=0
touch "$MNT/no-majority" 2>"$WORK/touch.err" || rc=$?
((rc != 0)) || fail "a create succeeded with one voter of three up"
grep -q "Connection timed out" "$WORK/touch.err" || fail "the create failed, but not with ETIMEDOUT: $(cat "$WORK/touch.err")"
((SECONDS - t0 >= 5)) || fail "the create failed after $((SECONDS - t0))s: it should wait for a leader first"
grep -q "to the metadata service (voters: node 1 at .*node 2 at .*node 3 at .*most of them are up" "$CLUSTER/log/mount.log" ||
	fail "the mount's log does not say which voters it asked and what to check"

step "the file opened before reads back whole, without waiting"
t0=$(($(date +%s%N) / 1000000))
got=$(sha256sum <&"$fd" | cut -d' ' -f1) || fail "reading the open file failed"
ms=$(($(date +%s%N) / 1000000 - t0))
assert_eq "$got" "$want" "sha256 of the file opened before the voters died"
((ms < 5000)) || fail "reading 8 MiB of an open file took ${ms}ms with no leader"
exec {fd}<&-

step "pifs-admin meta status says that metadata is stopped"
rc=0
it_admin meta status >"$WORK/meta" 2>&1 || rc=$?
cat "$WORK/meta"
assert_eq "$rc" 1 "meta status exit status with no majority"
grep -q "^quorum:    1 of 3 voters up, a majority is 2: metadata is stopped" "$WORK/meta" ||
	fail "meta status does not say that metadata is stopped"

step "node $OTHER back: a majority again"
"$PIFS_LOCAL" start "$CLUSTER" "$OTHER" >/dev/null 2>&1 || true
meta_wait_leader 30
step "node $META_LEADER leads"
it_wait_until 30 "a create succeeds again" touch "$MNT/majority-again"
assert_eq "$(sha256sum <"$MNT/big" | cut -d' ' -f1)" "$want" "sha256 of $MNT/big with two voters of three"
[[ ! -e $MNT/no-majority ]] || fail "the create that failed with no majority exists"
"$PIFS_LOCAL" start "$CLUSTER" "$LEADER" >/dev/null 2>&1 || true
it_wait_until 60 "every voter up" meta_all_up
