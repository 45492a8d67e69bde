#!/usr/bin/env bash
# fault_full.sh - full disks: every data directory on its own small tmpfs
# (node 3's of 24 MiB), reserve 4M. When node 3 is full, writes go on to the
# other nodes; when all are full, the writer gets ENOSPC (from write, fsync or
# close), and nothing it was told was written is lost; once there is room
# again, writing resumes without restarting anything.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FILE=$((3 << 20)) # each file: 3 chunks of random bytes
RESERVE=4

it_seed
it_workdir
SIZES=([1]=64 [2]=64 [3]=24)
unmount_tmpfs() {
	local n
	for n in 1 2 3; do
		mountpoint -q "$CLUSTER/node$n" && umount "$CLUSTER/node$n"
	done
	return 0
}
IT_ON_EXIT+=(unmount_tmpfs)
for n in 1 2 3; do
	mkdir -p "$CLUSTER/node$n"
	mount -t tmpfs -o "size=${SIZES[n]}m,mode=0700" "pifs-it-node$n" "$CLUSTER/node$n" ||
		fail "cannot mount a tmpfs on $CLUSTER/node$n (this test needs root)"
done
it_up --nodes 3 --replicas 2 --set reserve=${RESERVE}M --set heal_interval=2s \
	--set client.timeout=2s

MANIFEST=$WORK/manifest
mkdir -p "$WORK/src" "$MNT/d"
WRITTEN=0
# write_one: one more file; 0 and in the manifest when dd (write, fsync,
# close) succeeded, else dd's status with its message in $WORK/dd.err.
write_one() {
	local name=f$WRITTEN rc=0
	WRITTEN=$((WRITTEN + 1))
	it_make_file "$WORK/src/$name" "$FILE" 0
	dd if="$WORK/src/$name" of="$MNT/d/$name" bs=1M conv=fsync status=none 2>"$WORK/dd.err" || rc=$?
	((rc == 0)) && echo "$(sha256sum <"$WORK/src/$name" | cut -d' ' -f1)  d/$name" >>"$MANIFEST"
	return $rc
}
node_free() { json_num "$(json_node "$(it_admin df --json)" "$1")" free; }
# Full: not one more chunk fits above the reserve (pifs-admin status says so).
node_full() { [[ $(json_node "$(it_status_json)" "$1") == *'"full":true'* ]]; }

step "writing until node 3 (tmpfs of ${SIZES[3]} MiB) is full"
for ((i = 0; i < 30; i++)); do
	write_one || fail "writing d/f$((WRITTEN - 1)) failed while node 3 still had room: $(<"$WORK/dd.err")"
	node_full 3 && break
done
node_full 3 || fail "node 3 still has $(node_free 3) bytes free after $WRITTEN files"
free3=$(node_free 3)
((free3 < (RESERVE + 1) << 20)) || fail "status says node 3 is full with $free3 bytes free"
step "node 3 is full after $WRITTEN files: $free3 bytes free"
it_admin df || true
it_admin status || true
full_at=$WRITTEN
for ((i = 0; i < 4; i++)); do
	write_one || fail "writing d/f$((WRITTEN - 1)) failed with only node 3 full: $(<"$WORK/dd.err")"
done
step "4 more files written with node 3 full; each chunk has its 2 copies elsewhere"
it_mount "$WORK/m2"
it_check_manifest "$WORK/m2" "$MANIFEST" "with node 3 full"
for ((i = full_at; i < WRITTEN; i++)); do
	h=$(it_health "$WORK/m2/d/f$i")
	[[ $h == healthy:* ]] || fail "d/f$i, written while node 3 was full, is not healthy: $h"
done
it_umount "$WORK/m2"

step "writing until every node is full"
failed=0
for ((i = 0; i < 60; i++)); do
	if ! write_one; then
		failed=1
		break
	fi
done
((failed)) || fail "60 more files of 3 MiB were written on disks of $((SIZES[1] + SIZES[2] + SIZES[3])) MiB in all"
step "the writer of d/f$((WRITTEN - 1)) failed: $(<"$WORK/dd.err")"
grep -q 'No space left on device' "$WORK/dd.err" || fail "the writer failed, but not with ENOSPC: $(<"$WORK/dd.err")"
failed_name=f$((WRITTEN - 1))
it_admin df || true
ok=$(wc -l <"$MANIFEST")
it_mount "$WORK/m3"
it_check_manifest "$WORK/m3" "$MANIFEST" "with every node full"
# The file whose writer failed holds what was committed of it, if anything:
# never bytes it was not given.
got=$(stat -c %s "$WORK/m3/d/$failed_name")
cmp -s -n "$got" "$WORK/m3/d/$failed_name" "$WORK/src/$failed_name" ||
	fail "d/$failed_name, whose writer got ENOSPC, reads back $got bytes that differ from what was written"
step "d/$failed_name, whose writer got ENOSPC, holds $got bytes, all of them right"
it_umount "$WORK/m3"
step "all $ok files whose writer succeeded read back identical"

step "making room (tmpfs remount with 64 MiB more on each node)"
for n in 1 2 3; do
	mount -o remount,size=$((SIZES[n] + 64))m "$CLUSTER/node$n" || fail "cannot grow the tmpfs of node $n"
done
# The nodes see the room at once; the mount may still avoid the nodes that
# refused it a moment ago, for a few seconds at most.
resumed=0
for ((i = 0; i < 20; i++)); do
	if write_one; then
		resumed=1
		break
	fi
	sleep 1
done
((resumed)) || fail "writing did not resume within 20s of making room: $(<"$WORK/dd.err")"
step "writing resumed after $i failed attempts"
for ((i = 0; i < 3; i++)); do
	write_one || fail "writing d/f$((WRITTEN - 1)) failed after making room: $(<"$WORK/dd.err")"
done
"$ADMIN" -c "$CONF" --timeout 2s heal --wait --timeout 60s || fail "pifs-admin heal --wait failed (status $?)"
it_mount "$WORK/m4"
it_check_manifest "$WORK/m4" "$MANIFEST" "after making room"
bad=0
while read -r _ path; do
	h=$(it_health "$WORK/m4/$path")
	[[ $h == healthy:* ]] || { echo "  $path: $h"; bad=$((bad + 1)); }
done <"$MANIFEST"
((bad == 0)) || fail "$bad files lack copies after heal"
it_umount "$WORK/m4"
step "$(wc -l <"$MANIFEST") files identical and healthy"
