#!/usr/bin/env bash
# durability.sh - what a program wrote and closed survives kill -9 of the
# client and of a storage daemon: files written with fsync+close, and files
# written with close alone (DESIGN.md: close returns once every dirty chunk is
# on its R owners and the chunk list is committed).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=40
it_setup --nodes 3 --replicas 2

step "making $N source files"
mkdir -p "$WORK/src"
RANDOM=7
for ((i = 0; i < N; i++)); do
	case $((i % 4)) in
	0) size=$((RANDOM % 4096 + 1)) ;;                      # small
	1) size=$((1024 * 1024)) ;;                            # exactly one chunk
	2) size=$((2 * 1024 * 1024 + RANDOM * 13)) ;;          # spans chunks
	3) size=$((RANDOM * 17)) ;;                            # below one chunk
	esac
	head -c "$size" /dev/urandom >"$WORK/src/f$i"
done

step "writing $((N / 2)) files with fsync+close and $((N / 2)) with close alone"
mkdir "$MNT/d" || fail "mkdir $MNT/d"
for ((i = 0; i < N; i++)); do
	if ((i % 2 == 0)); then
		dd if="$WORK/src/f$i" of="$MNT/d/f$i" bs=1M conv=fsync status=none ||
			fail "dd conv=fsync of f$i failed"
	else
		cp "$WORK/src/f$i" "$MNT/d/f$i" || fail "cp of f$i failed"
	fi
done

# The last node is never the metadata voter (node 1 is).
victim=$(awk '/^\[node [0-9]+\]/ { id = $2 } END { sub(/\]/, "", id); print id }' "$CONF")
[[ $victim != 1 ]] || fail "the cluster has no node besides the metadata voter"
mpid=$(<"$CLUSTER/run/mount.pid")
npid=$(<"$CLUSTER/run/node$victim.pid")
step "kill -9 of pifs-mount (pid $mpid) and of node $victim (pid $npid)"
kill -KILL "$mpid" "$npid" || fail "kill -9 $mpid $npid"
for ((i = 0; i < 50; i++)); do
	kill -0 "$mpid" 2>/dev/null || kill -0 "$npid" 2>/dev/null || break
	sleep 0.1
done
if ls "$MNT/d" >/dev/null 2>&1; then
	fail "the mount still answers after kill -9 of its pifs-mount: was pid $mpid really it?"
fi

step "restarting node $victim and the mount with the same commands (pifs-local up)"
"$PIFS_LOCAL" up "$CLUSTER" || fail "pifs-local up after the kills failed"
[[ $(<"$CLUSTER/run/node$victim.pid") != "$npid" ]] || fail "node $victim was not restarted"

step "reading every file back"
bad=0
for ((i = 0; i < N; i++)); do
	how=$( ((i % 2 == 0)) && echo "fsync+close" || echo "close")
	if [[ ! -f $MNT/d/f$i ]]; then
		echo "  f$i ($how): missing"
		bad=$((bad + 1))
	elif ! cmp -s "$WORK/src/f$i" "$MNT/d/f$i"; then
		echo "  f$i ($how): differs: $(cmp "$WORK/src/f$i" "$MNT/d/f$i" 2>&1 | head -1)"
		bad=$((bad + 1))
	fi
done
((bad == 0)) || fail "$bad of $N files were lost or damaged by kill -9 of the client and node $victim"

