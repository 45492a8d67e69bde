#!/usr/bin/env bash
# failover.sh - how long metadata stops when the leader dies: kill -9 of the
# metadata leader's daemon, then the time until a create on the mount
# succeeds (the election, and the mount finding the new leader), over
# ROUNDS rounds of a local cluster of three voters.
#
# Usage: bench/failover.sh [--rounds N] [--dir DIR] [--base-port P]
#   --rounds N      kills to time (default 20, at most 200)
#   --dir DIR       where the cluster lives (default /var/tmp/pifs-failover;
#                   removed first and at the end)
#   --base-port P   the nodes' first port on 127.0.0.1 (default 18700)
#
# Needs a build in $PIFS_BIN (default ./build) and root (FUSE). Prints each
# round and then the median, 90th percentile and maximum in ms. The cluster
# runs on loopback: an election is timers and a few messages, so a Gigabit
# switch changes little; what it measures is pifs's own timeouts (a
# follower waits 1 to 2 s without the leader, then a pre-vote and a vote).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${PIFS_BIN:-$REPO/build}
ROUNDS=20
DIR=/var/tmp/pifs-failover
PORT=18700
while (($#)); do
	case $1 in
	--rounds) ROUNDS=$2; shift 2 ;;
	--dir) DIR=$2; shift 2 ;;
	--base-port) PORT=$2; shift 2 ;;
	-h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) printf 'failover: unknown option %s (see --help)\n' "$1" >&2; exit 2 ;;
	esac
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] && ((ROUNDS <= 200)) || { echo "failover: --rounds is 1 to 200" >&2; exit 2; }
LOCAL=$REPO/tools/pifs-local
ADMIN=$BIN/tools/pifs-admin
[[ -x $ADMIN ]] || { echo "failover: no pifs-admin in $BIN/tools: build first (tools/bootstrap)" >&2; exit 1; }
export PIFS_BIN=$BIN

cleanup() { "$LOCAL" down "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT
cleanup
"$LOCAL" up "$DIR" --nodes 3 --voters 3 --base-port "$PORT" >/dev/null
now_ms() { echo $(($(date +%s%N) / 1000000)); }
leader() {
	"$ADMIN" -c "$DIR/pifs.conf" --timeout 2s meta status --json 2>/dev/null |
		sed -n 's/^{"leader":\([0-9][0-9]*\),.*/\1/p'
}
wait_leader() {
	local l end=$(($(now_ms) + 30000))
	while (($(now_ms) < end)); do
		l=$(leader)
		[[ -n $l ]] && { echo "$l"; return 0; }
		sleep 0.2
	done
	echo "failover: no leader within 30s" >&2
	return 1
}

times=()
for ((k = 1; k <= ROUNDS; k++)); do
	l=$(wait_leader)
	# Every voter up and following before the kill.
	end=$(($(now_ms) + 30000))
	until "$ADMIN" -c "$DIR/pifs.conf" --timeout 2s meta status >/dev/null 2>&1; do
		(($(now_ms) < end)) || { echo "failover: a voter did not come back" >&2; exit 1; }
		sleep 0.2
	done
	touch "$DIR/mnt/warm-$k"
	"$LOCAL" stop "$DIR" "$l" --kill >/dev/null 2>&1
	t0=$(now_ms)
	# A create that returns success, retried at once if it fails (at most
	# 60 s: the mount's own wait is the [client] timeout, 10 s).
	until touch "$DIR/mnt/after-$k" 2>/dev/null; do
		(($(now_ms) - t0 < 60000)) || { echo "failover: no create succeeded within 60s" >&2; exit 1; }
	done
	ms=$(($(now_ms) - t0))
	times+=("$ms")
	printf 'round %d: killed leader node %s, first create after %d ms\n' "$k" "$l" "$ms"
	"$LOCAL" start "$DIR" "$l" >/dev/null 2>&1
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
n=${#times[@]}
pick() { sed -n "$1p" <<<"$sorted"; }
printf 'kill -9 of the leader to the first successful create, %d rounds: median %d ms, p90 %d ms, max %d ms\n' \
	"$n" "$(pick $(((n + 1) / 2)))" "$(pick $(((n * 9 + 9) / 10)))" "$(pick "$n")"
