#!/usr/bin/env bash
# admin.sh - pifs-admin against a live cluster: status, nodes and df agree
# with what runs; a node that does not answer shows as unreachable, not as
# zero; a stopped node shows as down and status exits 3.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

it_setup --nodes 3 --replicas 2

step "status, nodes and df of a healthy cluster"
"$ADMIN" -c "$CONF" status >"$WORK/status" || fail "pifs-admin status exited $? on a healthy cluster"
cat "$WORK/status"
grep -q '^nodes: *3 up of 3$' "$WORK/status" || fail "status does not say '3 up of 3'"
grep -q '2 replicas, chunk size 1.0 MiB' "$WORK/status" || fail "status does not show R=2 and 1 MiB chunks"
json=$("$ADMIN" -c "$CONF" status --json) || fail "status --json exited $?"
assert_eq "$(json_num "$json" nodes_up)" 3 "status --json nodes_up"
assert_eq "$(json_num "$json" replicas)" 2 "status --json replicas"
assert_eq "$(json_num "$json" chunk_size)" 1048576 "status --json chunk_size"
for c in status nodes df; do
	j=$("$ADMIN" -c "$CONF" "$c" --json) || fail "$c --json exited $?"
	if command -v python3 >/dev/null; then
		python3 -c 'import json,sys; json.loads(sys.stdin.read())' <<<"$j" ||
			fail "$c --json is not valid JSON: $j"
	elif command -v jq >/dev/null; then
		jq -e . <<<"$j" >/dev/null || fail "$c --json is not valid JSON: $j"
	else
		step "no python3 or jq here: JSON validity of $c --json not checked"
	fi
done
"$ADMIN" -c "$CONF" nodes >"$WORK/nodes" || fail "pifs-admin nodes exited $?"
cat "$WORK/nodes"
[[ $(grep -c -E '^[0-9]+ +127\.0\.0\.1:[0-9]+ +up +in ' "$WORK/nodes") == 3 ]] ||
	fail "nodes does not list 3 nodes up and in"
grep -qE '^1 .* yes ' "$WORK/nodes" || fail "nodes does not mark node 1 as the metadata voter"
"$ADMIN" -c "$CONF" df || fail "pifs-admin df exited $?"

step "status shows copies, heal and scrub; scrub and heal run on a healthy cluster"
head -c $((3 << 20)) /dev/urandom >"$MNT/data" || fail "writing $MNT/data failed"
for l in copies heal scrub health; do
	grep -q "^$l: " "$WORK/status" || fail "status has no '$l:' line"
done
json=$("$ADMIN" -c "$CONF" status --json) || fail "status --json exited $?"
for k in degraded heal_chunks heal_bytes heal_rate moved_chunks scrub_done scrub_total \
	scrub_corrupt scrub_repaired scrub_unrepairable; do
	json_num "$json" "$k" >/dev/null
done
grep -q '"work":{"heal_passes":' <<<"$json" || fail "status --json has no work record per node: $json"
out=$("$ADMIN" -c "$CONF" scrub --wait --json) || fail "scrub --wait exited $? on a healthy cluster: $out"
assert_eq "$(json_num "$out" corrupt)" 0 "corrupt copies found by scrub on a healthy cluster"
checked=$(json_num "$out" checked)
((checked >= 6)) || fail "scrub checked $checked chunks; 3 chunks of 2 copies were written"
out=$("$ADMIN" -c "$CONF" heal --wait --timeout 30s --json) || fail "heal --wait exited $? on a healthy cluster: $out"
grep -q '"complete":true' <<<"$out" || fail "heal --wait --json does not say complete: $out"
for c in scrub heal; do
	j=$("$ADMIN" -c "$CONF" "$c" --json) || fail "$c --json exited $?"
	grep -q '"started":true' <<<"$j" || fail "$c --json started nothing: $j"
	if command -v python3 >/dev/null; then
		python3 -c 'import json,sys; json.loads(sys.stdin.read())' <<<"$j" ||
			fail "$c --json is not valid JSON: $j"
	fi
done

step "a node that does not answer (SIGSTOP) is unreachable, not zero"
pid3=$(<"$CLUSTER/run/node3.pid")
kill -STOP "$pid3"
"$ADMIN" -c "$CONF" --timeout 1s nodes >"$WORK/nodes" || fail "nodes exited $? with node 3 stopped"
cat "$WORK/nodes"
grep -qE '^3 .*unreachable' "$WORK/nodes" || fail "nodes does not show node 3 as unreachable"
j=$("$ADMIN" -c "$CONF" --timeout 1s df --json) || fail "df --json exited $? with node 3 stopped"
grep -q '"stored_complete":false' <<<"$j" || fail "df --json claims complete figures without node 3: $j"
grep -q '"id":3,"address":"[^"]*","reachable":false,"used":null' <<<"$j" ||
	fail "df --json does not show node 3 as unreachable with null figures: $j"
kill -CONT "$pid3"

step "a stopped node shows as down, and status exits 3"
kill -TERM "$pid3"
for ((i = 0; i < 100; i++)); do kill -0 "$pid3" 2>/dev/null || break; sleep 0.1; done
rc=0
for ((i = 0; i < 40; i++)); do
	rc=0
	"$ADMIN" -c "$CONF" --timeout 1s status >"$WORK/status" || rc=$?
	((rc == 0)) || break
	sleep 0.5
done
cat "$WORK/status"
assert_eq "$rc" 3 "status exit code with node 3 down"
grep -q '^nodes: *2 up of 3$' "$WORK/status" || fail "status does not say '2 up of 3'"
grep -q '^  node 3 at 127.0.0.1:[0-9]* is down' "$WORK/status" || fail "status has no line for node 3 down"
"$PIFS_LOCAL" up "$CLUSTER" >/dev/null || fail "pifs-local up did not bring node 3 back"
# Its chunks were short of a copy while it was down: ok once heal has looked.
"$ADMIN" -c "$CONF" heal --wait --timeout 30s >/dev/null || fail "heal --wait exited $? after node 3 came back"
"$ADMIN" -c "$CONF" status >/dev/null || fail "status exited $? after node 3 came back and heal"
