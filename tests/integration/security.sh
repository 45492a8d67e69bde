#!/usr/bin/env bash
# security.sh - keys on real daemons. A mount with the cluster's client key
# works; a mount with no key, with a key the cluster does not know, with a
# node key, or whose key is revoked while it is mounted, is refused with a
# clear error and the cluster is untouched; a client key cannot remove a
# node or run gc, an admin key can; every refusal is logged with the key's
# name and counted.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

it_setup --nodes 3 --replicas 2 --voters 1
KEYS=$CLUSTER/keys

step "a fresh cluster is encrypted and authenticated: status says CURVE"
"$ADMIN" -c "$CONF" status >"$WORK/status" || fail "status exited $?"
grep -q '^security: *CURVE, allow-list generation 1' "$WORK/status" ||
	fail "status does not say CURVE: $(grep security "$WORK/status")"
[[ -f $KEYS/allowed && -f $KEYS/client.key && -f $KEYS/admin.key && -f $KEYS/node-1.key ]] ||
	fail "pifs-local up made no key directory at $KEYS"
assert_eq "$(stat -c %a "$KEYS/admin.key")" 600 "mode of admin.key"

step "the mount with the client key reads and writes"
head -c $((3 << 20)) /dev/urandom >"$WORK/photo"
cp "$WORK/photo" "$MNT/photo" || fail "writing through the client-key mount failed"
assert_files_same "$MNT/photo" "$WORK/photo" "a file written with the client key"
before=$(it_manifest "$MNT")

# try_mount NAME OPTION...: a mount that must fail; its messages in $out.
try_mount() {
	local dir=$WORK/$1
	shift
	mkdir -p "$dir"
	if out=$(timeout 30 "$MOUNT" -c "$CONF" -f "$@" "$dir" 2>&1 </dev/null); then
		fusermount3 -u "$dir" 2>/dev/null
		fail "pifs-mount $* exited 0: it must refuse"
	fi
	it_mounted "$dir" && fail "pifs-mount $* left $dir mounted"
	return 0
}

step "a mount without a key file is refused and says how to make one"
try_mount nokey -o key=nobody
grep -q "no key 'nobody'" <<<"$out" && grep -q "pifs-admin keys" <<<"$out" ||
	fail "no clear error for a missing key: $out"

step "a mount with a node's key is refused"
try_mount nodekey -o key=node-1
grep -q "role node" <<<"$out" || fail "no clear error for a node key: $out"

step "a mount with a key the cluster never made is refused by the nodes"
# Another machine's key directory: the cluster's public allow-list plus a key
# of its own, which the nodes have never been told of.
ROGUE=$WORK/rogue
mkdir -m 700 "$ROGUE"
cp "$KEYS/allowed" "$ROGUE/"
sed "s|^keys = .*|keys = $ROGUE|" "$CONF" >"$WORK/rogue.conf"
grep -q "^keys = $ROGUE" "$WORK/rogue.conf" || fail "the test could not point a config at $ROGUE"
"$ADMIN" -c "$WORK/rogue.conf" keys add-client intruder >"$WORK/rogue.out" 2>&1 ||
	step "keys add-client in the rogue directory: $(tail -n 2 "$WORK/rogue.out")"
[[ -f $ROGUE/intruder.key ]] || fail "keys add-client made no key: $(cat "$WORK/rogue.out")"
cp "$WORK/rogue.conf" "$CLUSTER/rogue.conf"
mkdir -p "$WORK/rogue-mnt"
if out=$(timeout 40 "$MOUNT" -c "$CLUSTER/rogue.conf" -f -o key=intruder "$WORK/rogue-mnt" 2>&1 </dev/null); then
	fusermount3 -u "$WORK/rogue-mnt"
	fail "a key the nodes do not list was let in"
fi
grep -q "refused this machine's key" <<<"$out" || fail "no clear error for an unknown key: $out"

step "a client key cannot change the map or run gc; the admin key can"
if out=$("$ADMIN" -c "$CONF" --key client node remove 3 2>&1); then
	fail "node remove with the client key exited 0: $out"
fi
grep -qi "refused" <<<"$out" || fail "node remove with the client key: no clear refusal: $out"
step "pifs-admin --key client node remove 3: $out"
if out=$("$ADMIN" -c "$CONF" --key client gc 2>&1); then
	fail "gc with the client key exited 0: $out"
fi
grep -qi "refused" <<<"$out" || fail "gc with the client key: no clear refusal: $out"
"$ADMIN" -c "$CONF" nodes | grep -c -E '^[0-9]+ .* up +in ' | grep -qx 3 ||
	fail "the refused node remove changed the map"
"$ADMIN" -c "$CONF" gc --wait >"$WORK/gc.out" 2>&1 || fail "gc with the admin key failed: $(cat "$WORK/gc.out")"

step "a key revoked while its mount is up is refused from then on"
"$ADMIN" -c "$CONF" keys add-client kiosk >"$WORK/add.out" 2>&1 ||
	fail "keys add-client kiosk failed: $(cat "$WORK/add.out")"
KIOSK=$WORK/kiosk
it_mount "$KIOSK" -o key=kiosk
cp "$WORK/photo" "$KIOSK/from-kiosk" || fail "the kiosk could not write before its key was revoked"
"$ADMIN" -c "$CONF" keys revoke kiosk >"$WORK/revoke.out" 2>&1 ||
	fail "keys revoke kiosk failed: $(cat "$WORK/revoke.out")"
cat "$WORK/revoke.out"
refused=
for ((i = 0; i < 100; i++)); do
	# A name never looked up: the kernel asks the mount, the mount the node.
	if ! err=$(stat "$KIOSK/probe-$i" 2>&1); then
		if grep -q "Permission denied" <<<"$err"; then
			refused=$i
			break
		fi
	fi
	sleep 0.1
done
[[ -n $refused ]] || fail "the revoked kiosk mount is still served 10s after keys revoke: $err"
step "refused $((refused / 10)).$((refused % 10))s after the revoke"
if (cat "$WORK/photo" >"$KIOSK/after-revoke") 2>/dev/null; then
	fail "the revoked kiosk mount could still write"
fi

step "the cluster is untouched: same files, every node up, the client mount works"
assert_eq "$(it_manifest "$MNT" | grep -v -e from-kiosk -e after-revoke)" "$before" "the files after the refusals"
assert_files_same "$MNT/from-kiosk" "$WORK/photo" "what the kiosk wrote before its revoke"
cp "$WORK/photo" "$MNT/after" || fail "the client mount failed after the refusals"
"$ADMIN" -c "$CONF" status >"$WORK/status" || fail "status exited $? after the refusals: $(cat "$WORK/status")"
grep -q '^nodes: *3 up of 3$' "$WORK/status" || fail "not every node is up after the refusals"
grep -q '^security: *CURVE, allow-list generation 3; [0-9]* requests or connections refused' "$WORK/status" ||
	fail "status does not count the refusals at generation 3: $(grep security "$WORK/status")"
grep -hq "refused .* with key 'kiosk'" "$CLUSTER"/log/node*.log ||
	fail "no node logged a refusal naming the key 'kiosk'"
grep -hq "refused [A-Z_]* from 127.0.0.1 with key 'client'" "$CLUSTER"/log/node*.log ||
	fail "no node logged the refusals of the client key's node remove and gc"

step "the admin key may remove a node"
"$ADMIN" -c "$CONF" node remove 3 --force >"$WORK/remove.out" 2>&1 ||
	fail "node remove with the admin key failed: $(cat "$WORK/remove.out")"
"$ADMIN" -c "$CONF" nodes >"$WORK/nodes" || fail "pifs-admin nodes exited $?"
# Out of the map, it holds no place: the configuration file still names it
# (unregistered, out), or its daemon, still running, has knocked again and
# waits to be admitted (new).
grep -qE '^3 +[^ ]+ +[a-z]+ +(out|new) ' "$WORK/nodes" ||
	fail "node 3 still has its place after its removal: $(cat "$WORK/nodes")"
assert_files_same "$MNT/photo" "$WORK/photo" "a file after node 3's removal"
