#!/usr/bin/env bash
# netns.sh - an emulated Gigabit switch on one machine, for the benchmarks.
#
# One network namespace per storage node (pb-s1 ... pb-sN) and per client
# (pb-c1 ... pb-cM), each attached by a veth pair to one Linux bridge (pb-br,
# the switch). Every link is shaped in both directions with tc tbf at
# 984 Mbit/s (so that the 24 bytes of preamble, FCS and gap of each 1538-byte
# frame are counted, as on a real 1 GbE wire), burst 32 KiB, latency 4 ms, with
# gso_max_segs 16 on both veth ends, as issue 5 and PERFORMANCE.md set it up:
# TSO/GSO stay on, so a packet through the veth, the bridge and tbf is up to
# 16 segments (23 KB, under the burst), not 64 KB (which the shaping would
# have to split, eating most of two cores) nor one segment (PB_OFFLOAD=off:
# every 1.5 KB segment then crosses the emulated switch on its own, which no
# real switch costs a Pi, and every system measured turns CPU-bound on the 2
# shared vCPUs). GRO is off. This kernel has no netem, so no delay is added:
# round trips are ~0.05 ms against 0.15-0.3 ms between real Pis.
#
# Addresses come from a private test range (PB_NET, default 10.77.0): storage
# node i is PB_NET.(10+i), client j is PB_NET.(100+j). The bridge has no
# address, so nothing outside the namespaces can reach them and they reach
# nothing outside: all benchmark traffic stays between the namespaces.
#
# Usage: netns.sh up [--storage N] [--clients M]   build it (left up until cleanup)
#        netns.sh iperf [--storage N] [--clients M] build it, measure one link, remove it
#        netns.sh cleanup                          remove every pb-* namespace, link, bridge
# Run as root. run.sh sources this file for the same functions.

PB_PREFIX=${PB_PREFIX:-pb}
PB_NET=${PB_NET:-10.77.0}
PB_BRIDGE=${PB_PREFIX}-br
PB_RATE=${PB_RATE:-984mbit}
PB_BURST=${PB_BURST:-32kb}
PB_LATENCY=${PB_LATENCY:-4ms}
PB_GSO_SEGS=${PB_GSO_SEGS:-16}
PB_OFFLOAD=${PB_OFFLOAD:-on}
PB_NS_LIST=()

pb_say() { printf 'bench: %s\n' "$*" >&2; }
pb_die() {
	printf 'bench: %s\n' "$*" >&2
	exit 1
}

pb_require_root() {
	[[ $(id -u) == 0 ]] ||
		pb_die "network namespaces, tc and mounts need root: run this as root (sudo $0 ...)"
}

# pb_ns_addr NAME: the address of namespace NAME (pb-s3 -> 10.77.0.13).
pb_ns_addr() {
	local n=${1#"$PB_PREFIX"-}
	case $n in
	s*) echo "$PB_NET.$((10 + ${n#s}))" ;;
	c*) echo "$PB_NET.$((100 + ${n#c}))" ;;
	*) return 1 ;;
	esac
}

# pb_in NS CMD...: run CMD in the network namespace NS only. Unlike
# 'ip netns exec' it keeps the host's mount namespace, so a FUSE mount made by
# CMD is visible to every process of the machine.
pb_in() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" -- "$@"
}

# pb_shape IFACE [NS]: shape the egress of IFACE (in NS, or the host).
pb_shape() {
	local dev=$1 ns=${2:-}
	local -a pre=()
	[[ -n $ns ]] && pre=(ip netns exec "$ns")
	"${pre[@]}" ethtool -K "$dev" tso "$PB_OFFLOAD" gso "$PB_OFFLOAD" gro off >/dev/null 2>&1 ||
		pb_die "cannot set TSO/GSO $PB_OFFLOAD on $dev${ns:+ in $ns} (is ethtool installed?)"
	"${pre[@]}" ip link set dev "$dev" gso_max_segs "$PB_GSO_SEGS" ||
		pb_die "cannot set gso_max_segs on $dev${ns:+ in $ns}"
	"${pre[@]}" tc qdisc replace dev "$dev" root tbf rate "$PB_RATE" burst "$PB_BURST" \
		latency "$PB_LATENCY" ||
		pb_die "cannot shape $dev${ns:+ in $ns} with tc tbf (is the sch_tbf module available?)"
}

# pb_check_free: refuse to touch a network that is in use on this machine.
pb_check_free() {
	local ns
	if ip link show "$PB_BRIDGE" >/dev/null 2>&1; then
		pb_die "bridge $PB_BRIDGE exists: another bench runs, or one crashed; run '$PB_HERE/netns.sh cleanup' first"
	fi
	for ns in $(ip netns list | awk '{print $1}'); do
		[[ $ns == "$PB_PREFIX"-* ]] &&
			pb_die "namespace $ns exists: another bench runs, or one crashed; run '$PB_HERE/netns.sh cleanup' first"
	done
	if ip -4 addr show | grep -q "inet $PB_NET\."; then
		pb_die "the host already has an address in $PB_NET.0/24: pick another range with PB_NET=10.78.0"
	fi
	if ip -4 route show | grep -v '^default' | grep -q "^$PB_NET\."; then
		pb_die "the host already routes $PB_NET.0/24: pick another range with PB_NET=10.78.0"
	fi
}

# pb_add_ns NAME: a namespace with lo and eth0 (PB_NET address), its host end
# (named NAME) in the bridge, both ends shaped.
pb_add_ns() {
	local ns=$1 addr
	addr=$(pb_ns_addr "$ns")
	ip netns add "$ns" || pb_die "cannot create network namespace $ns"
	PB_NS_LIST+=("$ns")
	ip link add "$ns" type veth peer name eth0 netns "$ns" ||
		pb_die "cannot create the veth pair of $ns"
	ip link set "$ns" master "$PB_BRIDGE" up || pb_die "cannot attach $ns to $PB_BRIDGE"
	ip netns exec "$ns" ip link set lo up
	ip netns exec "$ns" ip addr add "$addr/24" dev eth0 || pb_die "cannot address eth0 in $ns"
	ip netns exec "$ns" ip link set eth0 up || pb_die "cannot bring up eth0 in $ns"
	pb_shape "$ns"
	pb_shape eth0 "$ns"
}

# pb_up NSTORAGE NCLIENTS: the whole switch. Bounded: at most 16 of each.
pb_up() {
	local ns_s=$1 ns_c=$2 i
	((ns_s >= 1 && ns_s <= 16 && ns_c >= 1 && ns_c <= 16)) ||
		pb_die "asked for $ns_s storage and $ns_c client namespaces: 1 to 16 of each"
	pb_check_free
	ip link add "$PB_BRIDGE" type bridge forward_delay 0 stp_state 0 ||
		pb_die "cannot create bridge $PB_BRIDGE"
	ip link set "$PB_BRIDGE" up
	for ((i = 1; i <= ns_s; i++)); do pb_add_ns "$PB_PREFIX-s$i"; done
	for ((i = 1; i <= ns_c; i++)); do pb_add_ns "$PB_PREFIX-c$i"; done
	# Every node must answer the first client: a TCP connection to a closed
	# port is refused at once when the switch works. Links take a moment to
	# come up: try for at most 10 s.
	local j ok out
	for ((i = 1; i <= ns_s; i++)); do
		ok=0
		for ((j = 0; j < 50 && !ok; j++)); do
			out=$(pb_in "$PB_PREFIX-c1" timeout 1 bash -c \
				": </dev/tcp/$(pb_ns_addr "$PB_PREFIX-s$i")/9" 2>&1)
			if [[ $out == *refused* ]]; then ok=1; else sleep 0.2; fi
		done
		((ok)) || pb_die "$PB_PREFIX-s$i does not answer $PB_PREFIX-c1 ($out): the switch is broken"
	done
	pb_say "switch up: $ns_s storage + $ns_c client namespaces on $PB_BRIDGE, $PB_NET.0/24, tbf $PB_RATE"
}

# pb_kill_ns NS: stop every process in NS (all of them started by the bench):
# SIGTERM, at most 10 s, then SIGKILL.
pb_kill_ns() {
	local ns=$1 i pids
	pids=$(ip netns pids "$ns" 2>/dev/null)
	[[ -z $pids ]] && return 0
	kill -TERM $pids 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		pids=$(ip netns pids "$ns" 2>/dev/null)
		[[ -z $pids ]] && return 0
		sleep 0.1
	done
	pb_say "processes $pids in $ns did not stop within 10 s of SIGTERM: killing them"
	kill -KILL $pids 2>/dev/null
	for ((i = 0; i < 50; i++)); do
		[[ -z $(ip netns pids "$ns" 2>/dev/null) ]] && return 0
		sleep 0.1
	done
}

# pb_cleanup: remove every pb-* namespace (after stopping what runs in it),
# its veth and the bridge. Safe to run twice.
pb_cleanup() {
	local ns
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
		[[ $ns == "$PB_PREFIX"-* ]] || continue
		pb_kill_ns "$ns"
		ip netns del "$ns" 2>/dev/null
		ip link del "$ns" 2>/dev/null
	done
	ip link del "$PB_BRIDGE" 2>/dev/null
	PB_NS_LIST=()
	return 0
}

# pb_link_bytes: "NS OUT IN" for every bench link, bytes the namespace sent
# and received (read on the host end, where tx is what the namespace received).
pb_link_bytes() {
	local ns d=/sys/class/net
	for ns in "${PB_NS_LIST[@]}"; do
		echo "$ns $(<"$d/$ns/statistics/rx_bytes") $(<"$d/$ns/statistics/tx_bytes")"
	done
}

# pb_iperf SERVER_NS CLIENT_NS SECONDS: TCP goodput in Mbit/s from the client
# to the server (what the receiver got).
pb_iperf() {
	local srv=$1 cli=$2 secs=$3 pid out
	pb_in "$srv" iperf3 -s -1 -B "$(pb_ns_addr "$srv")" >/dev/null 2>&1 &
	pid=$!
	sleep 0.5
	out=$(pb_in "$cli" timeout $((secs + 10)) iperf3 -c "$(pb_ns_addr "$srv")" -t "$secs" -f m 2>&1)
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	awk '/receiver/ { v = $(NF - 2) } END { if (v == "") exit 1; print v }' <<<"$out" ||
		{ printf '%s\n' "$out" >&2; pb_die "iperf3 from $cli to $srv failed (output above)"; }
}

PB_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	set -uo pipefail
	cmd=${1:-}
	shift || true
	nst=3 ncl=2
	while (($#)); do
		case $1 in
		--storage) nst=$2; shift 2 ;;
		--clients) ncl=$2; shift 2 ;;
		*) pb_die "unknown option '$1' (see the top of $0)" ;;
		esac
	done
	case $cmd in
	up)
		pb_require_root
		trap 'pb_cleanup; exit 130' INT TERM
		trap 'rc=$?; ((rc == 0)) || pb_cleanup' EXIT
		pb_up "$nst" "$ncl"
		trap - INT TERM EXIT
		pb_say "left up; run '$0 cleanup' to remove it"
		;;
	iperf)
		pb_require_root
		command -v iperf3 >/dev/null || pb_die "iperf3 is not installed: apt-get install iperf3"
		trap 'pb_cleanup; exit 130' INT TERM
		trap 'pb_cleanup' EXIT
		pb_up "$nst" "$ncl"
		echo "one link ($PB_PREFIX-c1 -> $PB_PREFIX-s1): $(pb_iperf "$PB_PREFIX-s1" "$PB_PREFIX-c1" 5) Mbit/s"
		;;
	cleanup)
		pb_require_root
		pb_cleanup
		pb_say "removed every $PB_PREFIX-* namespace, link and $PB_BRIDGE"
		;;
	*)
		sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
		[[ $cmd == -h || $cmd == --help ]] || exit 2
		;;
	esac
fi
