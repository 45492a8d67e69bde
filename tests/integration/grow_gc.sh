#!/usr/bin/env bash
# grow_gc.sh - garbage collection and deduplication (3 nodes, R=2, 256 KiB
# chunks, gc_grace 3s): two identical files take the space of one and df
# shows the saving; after files are deleted, gc --dry-run shows what is
# reclaimable and deletes nothing, and gc --wait brings the stored bytes back
# to what the remaining files need (within 5%); files written with the same
# content as deleted ones while gc sweeps again and again stay readable.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GRACE=3
it_seed
it_setup --nodes 3 --replicas 2 --chunk-size 256K --set heal_interval=1h \
	--set gc_grace=${GRACE}s --set gc_interval=1h

stored() { echo $(($(it_node_bytes 1) + $(it_node_bytes 2) + $(it_node_bytes 3))); }

step "deduplication: a copy of a 2 MiB file takes no space"
head -c $((2 << 20)) /dev/urandom >"$WORK/x"
cp "$WORK/x" "$MNT/x" && sync
s1=$(stored)
cp "$WORK/x" "$MNT/y" && sync
s2=$(stored)
assert_eq "$s2" "$s1" "stored bytes after writing a second identical file"
df=$(it_admin df --json) || fail "df --json exited $?"
assert_eq "$(json_num "$df" dedup_extra_refs)" 8 "extra references of the 8 chunks shared by x and y"
assert_within "$(json_num "$df" dedup_saving)" $((2 << 20)) 5 "df dedup saving for a 2 MiB copy"
it_admin df | grep '^dedup saving' || fail "df shows no dedup saving line"

step "writing 40 files to keep and 40 to delete"
it_make_files "$WORK/keep" 40 $((64 << 10)) $((1 << 20))
it_make_files "$WORK/gone" 40 $((64 << 10)) $((1 << 20))
cp -r "$WORK/keep" "$MNT/keep" && sync
rm "$MNT/y"
need=$(stored)
cp -r "$WORK/gone" "$MNT/gone" && sync
it_manifest "$MNT/keep" >"$WORK/keep.manifest"
full=$(stored)
step "stored: $need bytes for x and keep/, $full with gone/ too"
((full > need * 3 / 2)) || fail "gone/ added too little to measure ($need -> $full bytes)"
rm -r "$MNT/gone"
sleep $((GRACE + 1))

step "gc --dry-run --wait: reclaimable shown, nothing deleted"
it_admin gc --dry-run --wait | tee "$WORK/dry"
assert_eq "$(stored)" "$full" "stored bytes after a dry run"
df=$(it_admin df --json)
rec=$(json_num "$df" reclaimable)
assert_within "$rec" $((full - need)) 5 "df reclaimable after gc --dry-run against the bytes of gone/"
it_admin df | grep '^reclaimable' || fail "df shows no reclaimable line"

step "gc --wait: the stored bytes fall to what the remaining files need"
it_admin gc --wait | tee "$WORK/gc"
grep -q 'deleted' "$WORK/gc" || fail "gc --wait does not say what it deleted"
after=$(stored)
step "stored after gc: $after bytes (need $need)"
assert_within "$after" "$need" 5 "stored bytes after gc against what x and keep/ need"
it_check_manifest "$MNT/keep" "$WORK/keep.manifest" "keep/ after gc"
cmp -s "$WORK/x" "$MNT/x" || fail "x reads back wrong after gc"

step "race: gc sweeps in a loop while files with the content of deleted ones are written"
cp -r "$WORK/gone" "$MNT/gone2" && sync
rm -r "$MNT/gone2"
sleep $((GRACE + 1))
gc_loop() {
	local i
	for ((i = 0; i < 200; i++)); do
		"$ADMIN" -c "$CONF" --timeout 2s gc --wait >/dev/null 2>&1 || true
	done
}
gc_loop &
GC=$!
for f in "$WORK"/gone/*; do
	cp "$f" "$MNT/back.$(basename "$f")" || fail "writing back.$(basename "$f") failed"
done
sync
(cd "$WORK/gone" && sha256sum -- *) | sed 's/  /  back./' >"$WORK/back.manifest"
sleep $((GRACE + 1))
kill "$GC" 2>/dev/null
wait "$GC" 2>/dev/null || true
it_admin gc --wait >/dev/null || fail "gc --wait after the race exited $?"
sleep $((GRACE + 1))
it_admin gc --wait >/dev/null || fail "the last gc --wait exited $?"
it_drop_caches
it_mount "$WORK/m2"
it_check_manifest "$WORK/m2" "$WORK/back.manifest" "files written during gc, after more sweeps"
it_check_manifest "$WORK/m2/keep" "$WORK/keep.manifest" "keep/ after the race"
it_umount "$WORK/m2"
