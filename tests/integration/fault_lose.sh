#!/usr/bin/env bash
# fault_lose.sh - a node stopped for good (3 nodes, R=2, out_after 6s): every
# file stays readable while the node is down, while it goes out and while
# heal copies its chunks; then every chunk has 2 copies on the 2 nodes left.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=40

it_seed
it_setup --nodes 3 --replicas 2 --set down_after=2s --set out_after=6s \
	--set heal_interval=2s --set client.timeout=2s

step "writing $N files of 1 KiB .. 3 MiB"
it_make_files "$WORK/src" "$N" 1024 $((3 << 20))
mkdir "$MNT/d"
MANIFEST=$WORK/manifest
for ((i = 0; i < N; i++)); do
	dd if="$WORK/src/f$i" of="$MNT/d/f$i" bs=1M conv=fsync status=none || fail "writing d/f$i failed"
	echo "$(sha256sum <"$WORK/src/f$i" | cut -d' ' -f1)  d/f$i" >>"$MANIFEST"
done
it_rand 2 3
VICTIM=$REPLY
before=$(json_num "$(json_node "$(it_admin nodes --json)" "$VICTIM")" chunks)
((before > 0)) || fail "node $VICTIM holds no chunk: the test would prove nothing"

# The reader: round after round, a fresh mount (no client or page cache to
# hide a missing copy) reads every file and checks it. A round that fails
# leaves its output in reader.fail.
reader() {
	local r=0 dir
	while [[ ! -e $WORK/reader.stop ]]; do
		dir=$WORK/r$r
		mkdir -p "$dir"
		"$MOUNT" -c "$CONF" -f "$dir" </dev/null >>"$CLUSTER/log/mount-reader.log" 2>&1 &
		local pid=$! i
		for ((i = 0; i < 100; i++)); do
			mountpoint -q "$dir" && break
			sleep 0.1
		done
		if ! (cd "$dir" && sha256sum --quiet -c "$MANIFEST") >"$WORK/reader.out" 2>&1; then
			{
				echo "round $r at $(date +%T.%N):"
				cat "$WORK/reader.out"
			} >>"$WORK/reader.fail"
		fi
		fusermount3 -u "$dir" 2>/dev/null || fusermount3 -uz "$dir"
		wait "$pid" 2>/dev/null || true
		rmdir "$dir" 2>/dev/null || true
		r=$((r + 1))
		echo "$r" >"$WORK/reader.rounds"
	done
}
reader_rounds() { cat "$WORK/reader.rounds" 2>/dev/null || echo 0; }
rounds_reach() { (($(reader_rounds) >= $1)); }
reader &
READER=$!
it_wait_until 30 "a first round of reads" rounds_reach 1
[[ ! -e $WORK/reader.fail ]] || fail "reads failed before any fault: $(head -n 20 "$WORK/reader.fail")"

step "stopping node $VICTIM for good (it held $before chunks)"
"$PIFS_LOCAL" stop "$CLUSTER" "$VICTIM" || fail "pifs-local stop of node $VICTIM failed"
r0=$(reader_rounds)
it_wait_until 15 "node $VICTIM marked down" node_is "$VICTIM" down in
step "node $VICTIM is down"
it_admin status || true
it_wait_until 20 "node $VICTIM marked out" node_is "$VICTIM" down out
step "node $VICTIM is out; heal --wait"
"$ADMIN" -c "$CONF" --timeout 2s heal --wait --timeout 90s || fail "pifs-admin heal --wait failed (status $?)"
it_admin status || true
json=$(it_status_json)
assert_eq "$(json_num "$json" degraded)" 0 "chunks short of copies after heal"
assert_eq "$(json_num "$json" heal_chunks)" 0 "chunks left to heal"

# Two more rounds, wholly after heal.
r1=$(($(reader_rounds) + 2))
it_wait_until 60 "two rounds of reads after heal" rounds_reach "$r1"
touch "$WORK/reader.stop"
wait "$READER" || true
rounds=$(reader_rounds)
step "the reader made $((rounds - r0)) rounds since node $VICTIM stopped ($rounds in all)"
[[ ! -e $WORK/reader.fail ]] || fail "files did not read back while node $VICTIM was gone:"$'\n'"$(head -n 30 "$WORK/reader.fail")"
((rounds - r0 >= 3)) || fail "only $((rounds - r0)) rounds of reads ran while node $VICTIM was gone"

step "every chunk has 2 copies, on the 2 nodes left"
it_mount "$WORK/m2"
it_check_manifest "$WORK/m2" "$MANIFEST" "after node $VICTIM was lost and heal"
bad=0
while read -r _ path; do
	h=$(it_health "$WORK/m2/$path")
	[[ $h == healthy:* ]] || { echo "  $path: $h"; bad=$((bad + 1)); }
	while read -r idx id nodes; do
		[[ ,$nodes, != *",$VICTIM,"* && $nodes == *,* ]] ||
			{ echo "  $path chunk $idx ($id): copies on nodes $nodes"; bad=$((bad + 1)); }
	done < <(getfattr --absolute-names --only-values -n user.pifs.chunks "$WORK/m2/$path")
done <"$MANIFEST"
((bad == 0)) || fail "$bad files or chunks lack their 2 copies on the nodes left"
it_umount "$WORK/m2"
