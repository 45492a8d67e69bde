#!/usr/bin/env bash
# fault_partition.sh - a network cut to one storage node. Node 3 runs in its
# own network namespace, joined to the others by a veth pair; every node has a
# 10.99.0.x address (nodes 1 and 2 on a second veth pair, both ends in the
# root namespace, which stays up whatever happens to the first; node 3 on its
# end of the first pair). Node 3 is cut off twice: its link taken down, then
# every packet it sends dropped (its routes deleted). Each time clients give
# up on it within [client] timeout, reads and writes go on, it is marked down
# but stays in (nothing is marked lost), and once its network is back it is up
# again and heal brings its chunks home.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=20
M=10
TIMEOUT_S=2

it_seed
it_workdir
command -v ip >/dev/null || fail "this test needs ip (iproute2)"
SUFFIX=$(($$ % 100000))
NS=pifs-it-part$SUFFIX
VH=pifs-h$SUFFIX  # the veth end in the root namespace
VN=pifs-n$SUFFIX  # the veth end in $NS, node 3's
DUM=pifs-a$SUFFIX # the addresses of nodes 1 and 2, with its peer $DUMP
DUMP=pifs-b$SUFFIX

net_cleanup() {
	ip netns del "$NS" 2>/dev/null
	ip link del "$DUM" 2>/dev/null
	ip link del "$VH" 2>/dev/null
	return 0
}
IT_ON_EXIT+=(net_cleanup)

# Three addresses of 10.99.0.0/24 that nothing here uses yet.
used=$(ip -o -4 addr show | grep -o '10\.99\.0\.[0-9]*' || true)
BASE=
for ((k = SUFFIX % 60; k < SUFFIX % 60 + 60; k++)); do
	b=$((4 * (k % 60) + 4))
	if ! grep -qxE "10\.99\.0\.($b|$((b + 1))|$((b + 2)))" <<<"$used"; then
		BASE=$b
		break
	fi
done
[[ -n $BASE ]] || fail "no 3 free addresses left in 10.99.0.0/24 (ip -o addr shows them taken)"
A1=10.99.0.$BASE
A2=10.99.0.$((BASE + 1))
A3=10.99.0.$((BASE + 2))

step "network: namespace $NS with node 3 at $A3 (veth $VH/$VN); nodes 1, 2 at $A1, $A2 ($DUM)"
ip netns add "$NS" || fail "cannot create the network namespace $NS (this test needs root)"
ip link add "$VH" type veth peer name "$VN" || fail "cannot create the veth pair $VH/$VN"
ip link set "$VN" netns "$NS"
ip link add "$DUM" type veth peer name "$DUMP" || fail "cannot create the veth pair $DUM/$DUMP"
ip addr add "$A1/32" dev "$DUM"
ip addr add "$A2/32" dev "$DUM"
ip link set "$DUMP" up
ip link set "$DUM" up
ip link set "$VH" up
ip route add "$A3/32" dev "$VH" src "$A1"
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" ip addr add "$A3/32" dev "$VN"
# Up, with its routes: taking a link down deletes the routes through it.
link_up() {
	ip netns exec "$NS" ip link set "$VN" up &&
		ip netns exec "$NS" ip route replace "$A1/32" dev "$VN" src "$A3" &&
		ip netns exec "$NS" ip route replace "$A2/32" dev "$VN" src "$A3"
}
link_up || fail "cannot bring up $VN in $NS with its routes"

# The ports: free ones from the test's base upward.
ports=()
base=${PIFS_TEST_BASE_PORT:-17300}
for ((p = base; ${#ports[@]} < 3 && p < base + 100; p++)); do
	[[ -n $(ss -ltnH "sport = :$p") ]] || ports+=("$p")
done
((${#ports[@]} == 3)) || fail "no 3 free ports from $base to $((base + 99))"
mkdir -p "$CLUSTER/log" "$CLUSTER/run" "$CLUSTER/node1" "$CLUSTER/node2" "$CLUSTER/node3"
{
	echo "[cluster]"
	echo "replicas = 2"
	echo "chunk_size = 1M"
	echo "reserve = 256M"
	echo "down_after = 2s"
	echo "out_after = 120s"
	echo "heal_interval = 2s"
	echo "keys = $CLUSTER/keys"
	addrs=("$A1" "$A2" "$A3")
	for n in 1 2 3; do
		echo "[node $n]"
		echo "address = ${addrs[n - 1]}:${ports[n - 1]}"
		echo "data = $CLUSTER/node$n"
		echo "meta = $([[ $n == 1 ]] && echo yes || echo no)"
		echo "weight = 100"
	done
	echo "[client]"
	echo "timeout = ${TIMEOUT_S}s"
} >"$CONF"

# Node 3 starts in its namespace (ip netns exec runs the daemon in its own
# place: the pid is the daemon's); pifs-local up finds it running (and the
# keys made) and starts the rest.
"$ADMIN" -c "$CONF" keys init >/dev/null || fail "pifs-admin keys init failed"
ip netns exec "$NS" "$STORAGED" -c "$CONF" --node 3 </dev/null >>"$CLUSTER/log/node3.log" 2>&1 &
echo $! >"$CLUSTER/run/node3.pid"
step "starting nodes 1 and 2 and the mount"
"$PIFS_LOCAL" up "$CLUSTER" || fail "pifs-local up failed (its messages are above)"
mountpoint -q "$MNT" || fail "pifs-local up returned but $MNT is not mounted"

step "writing $N files"
it_make_files "$WORK/src" $((N + 2 * M)) $((64 << 10)) $((3 << 20))
MANIFEST=$WORK/manifest
mkdir "$MNT/d"
for ((i = 0; i < N; i++)); do
	dd if="$WORK/src/f$i" of="$MNT/d/f$i" bs=1M conv=fsync status=none || fail "writing d/f$i failed"
	echo "$(sha256sum <"$WORK/src/f$i" | cut -d' ' -f1)  d/f$i" >>"$MANIFEST"
done
ms() { echo $(($(date +%s%N) / 1000000)); }
LIMIT_MS=$((3 * TIMEOUT_S * 1000))
NEXT=$N # the next file to write

# cut_and_heal HOW: cut node 3 off, HOW being "link" (its veth end taken
# down: the others' packets to it fail after ARP gives up) or "drop" (the
# link stays up but node 3's routes are gone: every packet it would send is
# dropped, and the others hear nothing at all); check what the clients and
# the cluster do; bring it back and heal.
cut_and_heal() {
	local how=$1 on3 moved0 slow t t0 i bad h moved
	on3=$(json_num "$(json_node "$(it_admin nodes --json)" 3)" chunks)
	((on3 > 0)) || fail "node 3 holds no chunk: the cut would prove nothing"
	moved0=$(json_num "$(it_status_json)" moved_chunks)
	step "cut ($how): node 3 cut off (it holds $on3 chunks)"
	if [[ $how == link ]]; then
		ip netns exec "$NS" ip link set "$VN" down
	else
		ip netns exec "$NS" ip route del "$A1/32"
		ip netns exec "$NS" ip route del "$A2/32"
	fi
	it_mount "$WORK/m2"
	slow=0
	t0=$(ms)
	for ((i = 0; i < NEXT; i++)); do
		t=$(ms)
		cmp -s "$WORK/src/f$i" "$WORK/m2/d/f$i" ||
			fail "d/f$i does not read back right with node 3 cut off ($how)"
		t=$(($(ms) - t))
		((t > slow)) && slow=$t
		((t <= LIMIT_MS)) ||
			fail "reading d/f$i took ${t} ms with node 3 cut off ($how; timeout ${TIMEOUT_S}s)"
	done
	step "cut ($how): all $NEXT files read back right, in $(($(ms) - t0)) ms; the slowest in $slow ms"
	slow=0
	for ((i = NEXT; i < NEXT + M; i++)); do
		t=$(ms)
		dd if="$WORK/src/f$i" of="$MNT/d/f$i" bs=1M conv=fsync status=none ||
			fail "writing d/f$i failed with node 3 cut off ($how)"
		t=$(($(ms) - t))
		((t > slow)) && slow=$t
		((t <= LIMIT_MS)) ||
			fail "writing d/f$i took ${t} ms with node 3 cut off ($how; timeout ${TIMEOUT_S}s)"
		echo "$(sha256sum <"$WORK/src/f$i" | cut -d' ' -f1)  d/f$i" >>"$MANIFEST"
	done
	NEXT=$((NEXT + M))
	step "cut ($how): $M more files written; the slowest in $slow ms"
	it_wait_until 15 "node 3 marked down ($how)" node_is 3 down
	it_admin status || true
	node_is 3 in || fail "node 3 was marked out within seconds of the cut: out_after is 120s"
	bad=0
	while read -r _ path; do
		h=$(it_health "$WORK/m2/$path")
		case $h in
		healthy:* | degraded:*) ;;
		*)
			echo "  $path: $h"
			bad=$((bad + 1))
			;;
		esac
	done <"$MANIFEST"
	((bad == 0)) || fail "$bad files are neither healthy nor degraded with node 3 cut off ($how)"
	it_check_manifest "$WORK/m2" "$MANIFEST" "with node 3 cut off ($how)"
	it_umount "$WORK/m2"

	step "cut ($how): restoring node 3's network"
	link_up || fail "cannot bring $VN back up with its routes"
	it_wait_until 45 "node 3 up again after its network came back ($how)" node_is 3 up in
	step "cut ($how): node 3 is up; heal --wait"
	"$ADMIN" -c "$CONF" --timeout 2s heal --wait --timeout 90s ||
		fail "pifs-admin heal --wait failed (status $?) after the cut ($how)"
	json=$(it_status_json)
	assert_eq "$(json_num "$json" degraded)" 0 "chunks short of copies after heal ($how)"
	moved=$(($(json_num "$json" moved_chunks) - moved0))
	((moved > 0)) || fail "heal moved no chunk to node 3, yet $M files were written while it was cut off ($how)"
	step "cut ($how): heal moved $moved chunks since the cut"
	it_mount "$WORK/m3"
	it_check_manifest "$WORK/m3" "$MANIFEST" "after node 3 came back ($how)"
	while read -r _ path; do
		h=$(it_health "$WORK/m3/$path")
		[[ $h == healthy:* ]] || fail "$path is not healthy after heal ($how): $h"
	done <"$MANIFEST"
	it_umount "$WORK/m3"
}

cut_and_heal link
cut_and_heal drop
