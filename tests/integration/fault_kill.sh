#!/usr/bin/env bash
# fault_kill.sh - kill -9 of a storage daemon while a writer copies 200 files
# (3 nodes, R=2): every file the writer saw fsync and close succeed reads back
# identical, and after a restart and heal every chunk has its 2 copies again.
# The moment of the kill and the victim come from the printed seed.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=200
MIN_DONE=150

it_seed
it_setup --nodes 3 --replicas 2 --set down_after=2s --set out_after=60s \
	--set heal_interval=2s --set client.timeout=2s

step "making $N source files of 1 KiB .. 3 MiB"
it_make_files "$WORK/src" "$N" 1024 $((3 << 20))
declare -a SHA
for ((i = 0; i < N; i++)); do
	SHA[i]=$(sha256sum <"$WORK/src/f$i" | cut -d' ' -f1)
done
it_rand 2 3
VICTIM=$REPLY
it_rand 20 110
KILL_AT=$REPLY
it_rand 2 4
DOWN_FOR=$REPLY
step "plan: kill -9 node $VICTIM once $KILL_AT files are in the manifest, restart it ${DOWN_FOR}s later"

# The writer: dd writes, fsyncs (conv=fsync) and closes each file, and fails
# if any of the three does; only then is the file added to the manifest.
MANIFEST=$WORK/manifest
: >"$MANIFEST"
mkdir "$MNT/w"
writer() {
	local i
	for ((i = 0; i < N; i++)); do
		if dd if="$WORK/src/f$i" of="$MNT/w/f$i" bs=1M conv=fsync status=none 2>>"$WORK/writer.err"; then
			echo "${SHA[i]}  w/f$i" >>"$MANIFEST"
		else
			echo "f$i: dd failed" >>"$WORK/writer.err"
		fi
	done
}
writer &
WRITER=$!

manifest_len() { wc -l <"$MANIFEST"; }
for ((t = 0; t < 1200; t++)); do
	(($(manifest_len) >= KILL_AT)) && break
	kill -0 "$WRITER" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$WRITER" 2>/dev/null ||
	fail "the writer ended (or died) before the kill: the kill did not happen while it ran ($(manifest_len) files written)"
(($(manifest_len) >= KILL_AT)) || fail "the writer wrote only $(manifest_len) files in 120s"
at=$(manifest_len)
"$PIFS_LOCAL" stop "$CLUSTER" "$VICTIM" --kill || fail "pifs-local stop --kill of node $VICTIM failed"
kill -0 "$WRITER" 2>/dev/null ||
	fail "the writer ended before the kill took effect: the kill did not happen while it ran"
step "killed node $VICTIM with $at files in the manifest, the writer still running"
sleep "$DOWN_FOR"
"$PIFS_LOCAL" start "$CLUSTER" "$VICTIM" || fail "pifs-local start of node $VICTIM failed"
mid=$(manifest_len)
((mid < N)) || step "note: the writer had finished when node $VICTIM came back"

for ((t = 0; t < 1800; t++)); do
	kill -0 "$WRITER" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$WRITER" 2>/dev/null && fail "the writer did not finish within 180s of the restart"
wait "$WRITER" || true
done_n=$(manifest_len)
failed=$((N - done_n))
step "the writer is done: $done_n of $N files in the manifest, $failed failed"
((failed == 0)) || sed 's/^/  /' "$WORK/writer.err" | head -n 10
((done_n >= MIN_DONE)) || fail "only $done_n of $N files were written (at least $MIN_DONE expected)"

step "heal --wait"
"$ADMIN" -c "$CONF" --timeout 2s heal --wait --timeout 90s || fail "pifs-admin heal --wait failed (status $?)"
json=$(it_status_json)
assert_eq "$(json_num "$json" degraded)" 0 "chunks short of copies after heal"
assert_eq "$(json_num "$json" nodes_up)" 3 "nodes up after the restart"

step "every manifest entry reads back identical, from a fresh mount"
it_mount "$WORK/m2"
it_check_manifest "$WORK/m2" "$MANIFEST" "after kill -9 of node $VICTIM and heal"
bad=0
while read -r _ path; do
	h=$(it_health "$WORK/m2/$path")
	if [[ $h != healthy:* ]]; then
		echo "  $path: $h"
		bad=$((bad + 1))
	fi
done <"$MANIFEST"
((bad == 0)) || fail "$bad files are not healthy (user.pifs.status) after heal"
it_umount "$WORK/m2"
step "all $done_n files identical and healthy (2 copies of every chunk)"
