#!/usr/bin/env bash
# meta_voters.sh - grow the metadata voters of a live cluster from 1 to 3
# (pifs-admin meta add), lose the leader to kill -9 with metadata still
# served by the other two within seconds, bring it back, then shrink to one
# voter again (meta remove): every file reads back identical throughout.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=40
# How long a create may take right after the leader dies: an election and
# the mount finding the new leader.
FAILOVER_MAX_S=${PIFS_FAILOVER_MAX_S:-8}

it_seed
it_setup --nodes 3 --voters 1 --replicas 2 --set down_after=2s

step "one voter: writing $N files"
meta_wait_leader 30
assert_eq "$(meta_voters)" 1 "voters of a cluster made with --voters 1"
it_make_files "$WORK/src" "$N" 1024 $((512 << 10))
cp -r "$WORK/src" "$MNT/d" || fail "copying the files in failed"
sync
it_manifest "$MNT" >"$WORK/manifest"

step "meta add 2, meta add 3"
for id in 2 3; do
	it_admin meta add "$id" --timeout 60s >"$WORK/add$id.out" || fail "meta add $id exited $?: $(cat "$WORK/add$id.out")"
	cat "$WORK/add$id.out"
	grep -q "node $id at .* is now a metadata voter" "$WORK/add$id.out" || fail "meta add $id does not say node $id is now a voter"
done
rc=0
it_admin meta add 3 >"$WORK/again.out" || rc=$?
assert_eq "$rc" 0 "exit status of meta add of a voter"
grep -q "already a metadata voter" "$WORK/again.out" || fail "meta add of a voter does not say it already is one: $(cat "$WORK/again.out")"
it_wait_until 30 "all 3 voters up and following" meta_all_up
assert_eq "$(meta_voters)" "1 2 3" "voters after meta add 2 and 3"
json=$(meta_status_json)
assert_eq "$(json_num "$json" voters_up)" 3 "meta status voters_up"
[[ -n $(meta_leader) ]] || fail "meta status shows no leader: $json"
it_admin meta status | tee "$WORK/meta"
grep -q '^metadata:  leader node [123] at ' "$WORK/meta" || fail "meta status does not name the leader"
grep -q '^quorum:    3 of 3 voters up' "$WORK/meta" || fail "meta status does not say 3 of 3 voters up"
it_admin status | tee "$WORK/status"
grep -q '^metadata:  leader node [123] at .*, voters 1 2 3 (all up)' "$WORK/status" ||
	fail "status does not show the 3 voters all up on its metadata line"

# The running mount was started when node 1 was the only voter: it learns
# the new ones from the cluster map, so it finds the next leader by itself.
# The operator names them in pifs.conf too, for mounts started later while
# node 1 is down.
it_conf_meta 2 yes
it_conf_meta 3 yes

meta_wait_leader 30
LEADER=$META_LEADER
step "kill -9 of the leader, node $LEADER"
"$PIFS_LOCAL" stop "$CLUSTER" "$LEADER" --kill || fail "pifs-local stop --kill of node $LEADER failed"
t0=$(($(date +%s%N) / 1000000))
echo "written after the leader died" >"$MNT/after-kill" || fail "a create right after the leader died failed"
ls "$MNT/d" >/dev/null || fail "ls right after the leader died failed"
ms=$(($(date +%s%N) / 1000000 - t0))
step "a create and an ls took ${ms}ms after the kill"
((ms <= FAILOVER_MAX_S * 1000)) || fail "a create and an ls took ${ms}ms after the leader died (at most ${FAILOVER_MAX_S}s expected)"
meta_wait_leader 15 "$LEADER"
step "node $META_LEADER leads now"
rc=0
it_admin meta status >"$WORK/meta" || rc=$?
cat "$WORK/meta"
assert_eq "$rc" 3 "meta status exit status with one voter of 3 down"
grep -q "^  $LEADER .*unreachable" "$WORK/meta" || fail "meta status does not show node $LEADER unreachable"
grep -q '^quorum:    2 of 3 voters up, a majority is 2: losing one more voter stops metadata' "$WORK/meta" ||
	fail "meta status does not say that one more loss stops metadata"
it_check_manifest "$MNT" "$WORK/manifest" "with node $LEADER (the old leader) killed"

step "node $LEADER back"
"$PIFS_LOCAL" start "$CLUSTER" "$LEADER" || fail "pifs-local start of node $LEADER failed"
it_wait_until 60 "node $LEADER back among the voters" meta_all_up

step "meta remove 3, meta remove 2"
for id in 3 2; do
	it_admin meta remove "$id" --timeout 60s >"$WORK/remove$id.out" || fail "meta remove $id exited $?: $(cat "$WORK/remove$id.out")"
	cat "$WORK/remove$id.out"
	grep -q "node $id at .* is no longer a metadata voter" "$WORK/remove$id.out" ||
		fail "meta remove $id does not say node $id is no longer a voter"
	it_conf_meta "$id" no
	meta_wait_leader 30
done
assert_eq "$(meta_voters)" 1 "voters after meta remove 3 and 2"
rc=0
it_admin meta remove 1 2>"$WORK/last.err" || rc=$?
assert_eq "$rc" 1 "exit status of meta remove of the last voter"
grep -q "last metadata voter" "$WORK/last.err" || fail "meta remove of the last voter is not refused as such: $(cat "$WORK/last.err")"
it_wait_until 30 "the one voter up" meta_all_up

step "every file reads back identical, from a fresh mount"
it_mount "$WORK/m2"
it_check_manifest "$WORK/m2" "$WORK/manifest" "after growing to 3 voters, losing the leader and shrinking to 1"
assert_eq "$(cat "$WORK/m2/after-kill")" "written after the leader died" "the file created while the leader was dead"
it_umount "$WORK/m2"
