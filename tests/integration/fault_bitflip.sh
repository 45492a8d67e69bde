#!/usr/bin/env bash
# fault_bitflip.sh - one bit flipped in every chunk file of one node: reads
# still return the right bytes, the corruption is counted, scrub repairs the
# copies on disk; a chunk flipped on every copy reads as EIO, never as wrong
# bytes, and counts as unrepairable.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=24
HDR=32 # fs/frame.h PIFS_FRAME_HDR: the flips go into the payload

it_seed
it_setup --nodes 3 --replicas 2 --set scrub_rate=0 --set heal_interval=2s --set client.timeout=2s

step "writing $N files of 64 KiB .. 3 MiB, and lost.bin (one chunk)"
it_make_files "$WORK/src" "$N" $((64 << 10)) $((3 << 20))
it_make_file "$WORK/src/lost.bin" $((700 << 10)) 0
mkdir "$MNT/d"
MANIFEST=$WORK/manifest
for ((i = 0; i < N; i++)); do
	dd if="$WORK/src/f$i" of="$MNT/d/f$i" bs=1M conv=fsync status=none || fail "writing d/f$i failed"
	echo "$(sha256sum <"$WORK/src/f$i" | cut -d' ' -f1)  d/f$i" >>"$MANIFEST"
done
dd if="$WORK/src/lost.bin" of="$MNT/lost.bin" bs=1M conv=fsync status=none || fail "writing lost.bin failed"
read -r _ LOST_ID LOST_NODES < <(getfattr --absolute-names --only-values -n user.pifs.chunks "$MNT/lost.bin")
[[ $LOST_ID =~ ^[0-9a-f]{32}$ && $LOST_NODES == *,* ]] ||
	fail "user.pifs.chunks of lost.bin does not name its chunk and 2 nodes: '$LOST_ID $LOST_NODES'"

it_rand 1 3
VICTIM=$REPLY
mapfile -t CHUNKS < <(find "$CLUSTER/node$VICTIM/chunks" -type f ! -name "$LOST_ID" | sort)
((${#CHUNKS[@]} >= 8)) || fail "node $VICTIM holds only ${#CHUNKS[@]} chunks: too few for this test"
(cd "$CLUSTER/node$VICTIM" && find chunks -type f ! -name "$LOST_ID" -print0 | sort -z |
	xargs -0 sha256sum) >"$WORK/chunks.sha"

step "flipping one bit in each of the ${#CHUNKS[@]} chunk files of node $VICTIM"
for f in "${CHUNKS[@]}"; do
	size=$(stat -c %s "$f")
	it_rand "$HDR" $((size - 1))
	off=$REPLY
	it_rand 0 7
	it_flip_bit "$f" "$off" "$REPLY"
done
(cd "$CLUSTER/node$VICTIM" && sha256sum --quiet -c "$WORK/chunks.sha" >/dev/null 2>&1) &&
	fail "the flips did not change the chunk files of node $VICTIM"
it_drop_caches

step "every file reads back right, from a fresh mount"
it_mount "$WORK/m2"
it_check_manifest "$WORK/m2" "$MANIFEST" "with a bit flipped in every chunk of node $VICTIM"
it_umount "$WORK/m2"
# The reads repair what they met in the background: give them a moment.
corrupt_seen() { (($(json_num "$(it_status_json)" scrub_corrupt) >= 1)); }
it_wait_until 10 "the corrupt copies met by the reads to be counted (status scrub_corrupt)" corrupt_seen
json=$(it_status_json)
step "counted after the reads: $(json_num "$json" scrub_corrupt) corrupt, $(json_num "$json" scrub_repaired) repaired"

step "scrub --wait repairs the rest"
out=$("$ADMIN" -c "$CONF" --timeout 2s scrub --wait --json) || fail "pifs-admin scrub --wait exited $? with every copy repairable: $out"
echo "$out"
scrub_repaired=$(json_num "$out" repaired)
((scrub_repaired >= 1)) || fail "scrub repaired nothing, yet some copies on node $VICTIM were never read"
assert_eq "$(json_num "$out" unrepairable)" 0 "unrepairable copies in the scrub"
json=$(it_status_json)
total=$(json_num "$json" scrub_corrupt)
((total >= ${#CHUNKS[@]})) || fail "status counts $total corrupt copies; ${#CHUNKS[@]} were flipped"
assert_eq "$(json_num "$json" scrub_repaired)" "$total" "copies repaired (status), of $total corrupt"
assert_eq "$(json_num "$json" scrub_unrepairable)" 0 "unrepairable copies (status)"

step "the chunk files of node $VICTIM are whole again, and a second scrub finds nothing"
(cd "$CLUSTER/node$VICTIM" && sha256sum --quiet -c "$WORK/chunks.sha") >"$WORK/chunks.out" 2>&1 ||
	fail "chunk files of node $VICTIM are not back as they were:"$'\n'"$(head -n 10 "$WORK/chunks.out")"
out=$("$ADMIN" -c "$CONF" --timeout 2s scrub --wait --json) || fail "the second scrub --wait exited $?: $out"
assert_eq "$(json_num "$out" corrupt)" 0 "corrupt copies found by the second scrub"
it_mount "$WORK/m3"
it_check_manifest "$WORK/m3" "$MANIFEST" "after scrub"
it_umount "$WORK/m3"

step "a bit flipped in every copy of the chunk of lost.bin (nodes $LOST_NODES)"
for n in ${LOST_NODES//,/ }; do
	f=$(it_chunk_file "$n" "$LOST_ID")
	[[ -f $f ]] || fail "node $n has no file $f, yet user.pifs.chunks says it holds chunk $LOST_ID"
	size=$(stat -c %s "$f")
	it_rand "$HDR" $((size - 1))
	off=$REPLY
	it_rand 0 7
	it_flip_bit "$f" "$off" "$REPLY"
done
it_drop_caches
it_mount "$WORK/m4"
rc=0
dd if="$WORK/m4/lost.bin" of="$WORK/lost.out" bs=1M status=none 2>"$WORK/lost.err" || rc=$?
((rc != 0)) || fail "lost.bin, corrupt on every copy, read without an error"
grep -q 'Input/output error' "$WORK/lost.err" || fail "reading lost.bin failed, but not with EIO: $(<"$WORK/lost.err")"
got=$(stat -c %s "$WORK/lost.out")
cmp -s -n "$got" "$WORK/lost.out" "$WORK/src/lost.bin" ||
	fail "reading lost.bin returned $got bytes that differ from what was written"
step "lost.bin reads as EIO ($got bytes before the error, all of them right)"
rc=0
cat "$WORK/m4/lost.bin" >/dev/null 2>"$WORK/lost.err" || rc=$?
if ((rc == 0)) || ! grep -q 'Input/output error' "$WORK/lost.err"; then
	fail "a second read of lost.bin did not fail with EIO: $(<"$WORK/lost.err")"
fi
h=$(it_health "$WORK/m4/lost.bin")
[[ $h == unreadable:* ]] || fail "user.pifs.status of lost.bin says '$h', not unreadable"
it_umount "$WORK/m4"
unrep_seen() { (($(json_num "$(it_status_json)" scrub_unrepairable) >= 1)); }
it_wait_until 10 "the copies of lost.bin to count as unrepairable (status scrub_unrepairable)" unrep_seen
rc=0
out=$("$ADMIN" -c "$CONF" --timeout 2s scrub --wait 2>&1) || rc=$?
echo "$out"
assert_eq "$rc" 1 "the exit status of scrub --wait with an unrepairable chunk"
it_admin status || true
