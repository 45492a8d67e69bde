#!/usr/bin/env bash
# df.sh - pifs-admin df counts what the cluster really stores: a random file
# is stored R times uncompressed, a text file is stored compressed, a copy of
# a file costs no new chunks (deduplication).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

R=2
MIB=$((1024 * 1024))
SIZE=$((64 * MIB))
it_setup --nodes 3 --replicas "$R"

df_json() {
	"$ADMIN" -c "$CONF" df --json || fail "pifs-admin df --json failed (status $?)"
}

# The figures this test checks (free space moves with everything else on the disk).
figures() {
	local k
	for k in logical chunks chunk_raw chunk_stored chunk_refs stored; do
		printf '%s ' "$(json_num "$1" "$k")"
	done
}

# settle: the df JSON after a write, once two readings in a row agree on the
# figures (the nodes count their chunks as they store them; allow a moment).
settle() {
	local a b i
	a=$(df_json)
	for ((i = 0; i < 20; i++)); do
		sleep 0.3
		b=$(df_json)
		[[ $(figures "$a") == "$(figures "$b")" ]] && break
		a=$b
	done
	echo "$b"
}

base=$(settle)
step "empty cluster: $base"
grep -q '"stored_complete":true' <<<"$base" || fail "a node did not answer NODE_STAT: $base"

step "writing a 64 MiB random file"
head -c "$SIZE" /dev/urandom >"$WORK/random.bin"
cp "$WORK/random.bin" "$MNT/random.bin" || fail "cp random.bin into the mount failed"
rnd=$(settle)
d_logical=$(($(json_num "$rnd" logical) - $(json_num "$base" logical)))
d_raw=$(($(json_num "$rnd" chunk_raw) - $(json_num "$base" chunk_raw)))
d_cstored=$(($(json_num "$rnd" chunk_stored) - $(json_num "$base" chunk_stored)))
d_stored=$(($(json_num "$rnd" stored) - $(json_num "$base" stored)))
d_chunks=$(($(json_num "$rnd" chunks) - $(json_num "$base" chunks)))
step "random file: logical +$d_logical, chunks +$d_chunks, raw +$d_raw, stored once +$d_cstored, stored +$d_stored"
assert_eq "$d_logical" "$SIZE" "logical bytes after a 64 MiB file"
assert_eq "$d_chunks" 64 "new chunks for 64 MiB of random data in 1 MiB chunks"
assert_eq "$d_raw" "$SIZE" "raw bytes of the random file's chunks"
assert_within "$d_cstored" "$SIZE" 2 "the random file's chunks as stored (random data does not compress)"
assert_within "$d_stored" $((R * SIZE)) 2 "bytes on the nodes' disks for the random file (R=$R copies)"
assert_files_same "$WORK/random.bin" "$MNT/random.bin" "the random file read back"

step "writing a 64 MiB log-like text file"
awk -v size="$SIZE" 'BEGIN {
	lv[0] = "INFO"; lv[1] = "WARN"; lv[2] = "DEBUG"; lv[3] = "INFO"
	for (n = 0; total < size; n++) {
		line = sprintf("2024-05-%02d %02d:%02d:%02d.%03d %-5s storaged[%d]: chunk %010d stored on node %d in %d.%02d ms\n",
			1 + n % 28, n % 24, n % 60, (n * 7) % 60, n % 1000, lv[n % 4], 1000 + n % 7,
			(n * 7919) % 1000000007, 1 + n % 3, n % 40, n % 100)
		if (total + length(line) > size)
			line = substr(line, 1, size - total)
		printf "%s", line
		total += length(line)
	}
}' >"$WORK/text.log"
[[ $(stat -c %s "$WORK/text.log") -eq $SIZE ]] || fail "the text file is not 64 MiB"
cp "$WORK/text.log" "$MNT/text.log" || fail "cp text.log into the mount failed"
txt=$(settle)
t_logical=$(($(json_num "$txt" logical) - $(json_num "$rnd" logical)))
t_raw=$(($(json_num "$txt" chunk_raw) - $(json_num "$rnd" chunk_raw)))
t_cstored=$(($(json_num "$txt" chunk_stored) - $(json_num "$rnd" chunk_stored)))
t_stored=$(($(json_num "$txt" stored) - $(json_num "$rnd" stored)))
step "text file: logical +$t_logical, raw +$t_raw, stored once +$t_cstored, stored +$t_stored"
assert_eq "$t_logical" "$SIZE" "logical bytes after the text file"
assert_eq "$t_raw" "$SIZE" "raw bytes of the text file's chunks"
((t_cstored > 0 && t_cstored * 2 < t_raw)) ||
	fail "the text file's chunks are not stored compressed: $t_cstored stored bytes for $t_raw raw (want < 50%)"
assert_within "$t_stored" $((R * t_cstored)) 3 "bytes on the nodes' disks for the text file (R=$R compressed copies)"
assert_files_same "$WORK/text.log" "$MNT/text.log" "the text file read back"

step "copying the random file inside the mount (deduplication)"
cp "$MNT/random.bin" "$MNT/random-copy.bin" || fail "cp inside the mount failed"
dup=$(settle)
assert_eq "$(($(json_num "$dup" logical) - $(json_num "$txt" logical)))" "$SIZE" "logical bytes after the copy"
assert_eq "$(json_num "$dup" chunks)" "$(json_num "$txt" chunks)" "distinct chunks after copying a file"
assert_within "$(json_num "$dup" stored)" "$(json_num "$txt" stored)" 1 "stored bytes after copying a file"
assert_within "$(json_num "$dup" dedup_saving)" "$SIZE" 2 "the dedup saving of one copy of a 64 MiB file"
assert_files_same "$WORK/random.bin" "$MNT/random-copy.bin" "the copy read back"

step "the df table:"
"$ADMIN" -c "$CONF" df || fail "pifs-admin df failed (status $?)"
