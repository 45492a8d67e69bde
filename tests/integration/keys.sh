#!/usr/bin/env bash
# keys.sh - pifs-admin keys on the key directory's files, with no daemon
# running: init makes every file mode 600 and refuses to run twice, add-*
# and revoke change the allow-list one generation at a time and say that
# no node answered, the last admin key and pifs-admin's own are protected,
# list and --json show it all, and a bad allow-list is named by file:line.
# export writes a key and the list in one file, mode 600, and import on
# another machine (a second configuration here) writes the same two files
# back, refusing admin keys without --force, older lists and tampered
# bundles without writing anything.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

it_workdir
# Where run (lib.sh) keeps what a command printed.
out=$WORK/out
err=$WORK/err
KEYS=$WORK/keys
# No cluster directory: nothing for the cleanup to stop.
CONF=$WORK/pifs.conf

# expect FILE TEXT WHAT: FILE holds TEXT (a fixed string).
expect() {
	grep -qF -- "$2" "$1" || fail "$3: no '$2' in $(basename "$1"): $(head -c 600 "$1")"
}

# keys ARGS...: pifs-admin keys on this test's configuration, with the
# admin key $KEY (pifs-admin's default, admin, when unset). Nothing runs at
# its ports, so a push waits one short timeout.
KEY=
keys() {
	"$ADMIN" -c "$CONF" --timeout 300ms ${KEY:+--key "$KEY"} keys "$@"
}

mode_of() {
	stat -c %a "$1"
}

generation() {
	sed -n 's/^generation \([0-9]*\)$/\1/p' "$KEYS/allowed"
}

json_ok() {
	if command -v python3 >/dev/null; then
		python3 -c 'import json,sys; json.loads(sys.stdin.read())' <"$1" ||
			fail "$2 is not valid JSON: $(cat "$1")"
	elif command -v jq >/dev/null; then
		jq -e . <"$1" >/dev/null || fail "$2 is not valid JSON: $(cat "$1")"
	fi
}

# Two nodes at ports where nothing listens (the test never starts them).
port=17380
while [[ -n $(ss -ltnH "sport = :$port") || -n $(ss -ltnH "sport = :$((port + 1))") ]]; do
	port=$((port + 2))
done
cat >"$CONF" <<EOF
[cluster]
replicas = 1
keys = $KEYS

[node 1]
address = 127.0.0.1:$port
data = $WORK/node1
meta = yes

[node 2]
address = 127.0.0.1:$((port + 1))
data = $WORK/node2
EOF

step "every keys subcommand explains itself"
run 0 "keys --help" -- "$ADMIN" keys --help
expect "$out" "Usage: pifs-admin [-c FILE] [--json] keys init" "keys --help"
expect "$out" "Exit status" "keys --help"
for c in init add-node add-client add-admin revoke list push export import; do
	run 0 "keys $c --help" -- "$ADMIN" keys "$c" --help
	grep -q "^Usage: pifs-admin .* keys $c" "$out" || fail "keys $c --help does not show its own usage: $(head -n 2 "$out")"
	expect "$out" "Exit status" "keys $c --help"
	expect "$out" "Examples:" "keys $c --help"
done
"$ADMIN" --help | grep -q '^  keys ' || fail "pifs-admin --help does not list keys"
"$ADMIN" --help | grep -q 'keys export' || fail "pifs-admin --help does not name keys export"
"$ADMIN" keys --help | grep -q '^  import FILE ' || fail "keys --help does not list import"

step "bad command lines exit 2 before anything is read"
for args in "keys" "keys frob" "keys init now" "keys add-node" "keys add-node 0" "keys add-node 07" \
	"keys add-client Kiosk" "keys add-client node-9" "keys add-admin -x" "keys list --force" \
	"keys revoke" "keys push --wait" "keys export" "keys import" "keys export Kiosk -o x" \
	"keys import a b" "keys list -o x" "keys add-client kiosk -o x" "keys init --force" \
	"keys export client --json" "keys export client -o"; do
	# shellcheck disable=SC2086 # the words are the arguments
	run 2 "pifs-admin $args" -- "$ADMIN" -c "$CONF" $args
	grep -q '^pifs-admin: ' "$err" || fail "pifs-admin $args: no 'pifs-admin: ...' message"
	grep -q "Try 'pifs-admin --help'" "$err" || fail "pifs-admin $args: no hint to --help"
done
[[ ! -e $KEYS ]] || fail "a bad command line made $KEYS"

step "before init: no allow-list, and what to do"
run 1 "keys list before init" -- keys list
expect "$err" "keys init" "keys list before init"

step "init makes every key, mode 600, in a directory of mode 700"
run 0 "keys init" -- keys init
for f in allowed node-1.key node-2.key client.key admin.key; do
	[[ -f $KEYS/$f ]] || fail "keys init made no $KEYS/$f"
	assert_eq "$(mode_of "$KEYS/$f")" 600 "mode of $f"
done
assert_eq "$(mode_of "$KEYS")" 700 "mode of the key directory"
assert_eq "$(find "$KEYS" -mindepth 1 | wc -l)" 5 "files in the key directory"
assert_eq "$(generation)" 1 "generation after init"
expect "$out" "$KEYS/admin.key stays on this machine" "keys init"
expect "$out" "keys export node-2 -o node-2.keys" "keys init"
expect "$out" "keys export client -o client.keys" "keys init"
expect "$out" "keys import node-1.keys" "keys init"
grep -q "export admin" "$out" && fail "keys init says to export admin.key"
grep -q "secret" "$KEYS/allowed" && fail "the allow-list mentions a secret"
grep -q '^secret = ' "$KEYS/client.key" || fail "client.key has no secret"
# The allow-list holds the key file's public half.
pub=$(sed -n 's/^public = //p' "$KEYS/client.key")
grep -qE "^client +client +$(printf '%s' "$pub" | sed 's/[][\\.^$*+?(){}|/]/\\&/g')\$" "$KEYS/allowed" ||
	fail "the allow-list does not hold client.key's public half: $(cat "$KEYS/allowed")"

step "init refuses to run again, and changes nothing"
before=$(cd "$KEYS" && sha256sum -- *)
run 1 "keys init again" -- keys init
expect "$err" "exists (generation 1, 4 keys)" "keys init again"
expect "$err" "keys add-node N" "keys init again"
assert_eq "$(cd "$KEYS" && sha256sum -- *)" "$before" "the key directory after a refused init"

step "list: four active keys, their secrets here"
run 0 "keys list" -- keys list
expect "$out" "generation 1, 4 keys (0 revoked)" "keys list"
for n in node-1 node-2 client admin; do
	grep -qE "^$n +[a-z]+ +active +.{12}… +here\$" "$out" || fail "keys list has no active line for $n: $(cat "$out")"
done

step "add-client: a new key, generation 2, and no node answered"
run 3 "keys add-client kiosk-1" -- keys add-client kiosk-1
assert_eq "$(generation)" 2 "generation after add-client"
assert_eq "$(mode_of "$KEYS/kiosk-1.key")" 600 "mode of kiosk-1.key"
expect "$out" "made kiosk-1 (client)" "keys add-client"
expect "$out" "pifs-mount -o key=kiosk-1" "keys add-client"
expect "$out" "no answer within 300 ms" "keys add-client"
expect "$err" "no node answered" "keys add-client"
expect "$err" "keys push" "keys add-client"
run 1 "keys add-client kiosk-1 again" -- keys add-client kiosk-1
expect "$err" "exists already" "keys add-client kiosk-1 again"
assert_eq "$(generation)" 2 "generation after a refused add-client"

step "add-client --json"
run 3 "keys add-client kiosk-2 --json" -- keys add-client kiosk-2 --json
json_ok "$out" "keys add-client --json"
expect "$out" '"action":"add-client","name":"kiosk-2","role":"client"' "keys add-client --json"
expect "$out" '"generation":3' "keys add-client --json"
expect "$out" '"nodes_took":0,"nodes_asked":2' "keys add-client --json"
expect "$out" '"took":false' "keys add-client --json"

step "revoke: marked revoked, its key file gone, the name kept"
run 3 "keys revoke kiosk-1" -- keys revoke kiosk-1
[[ ! -e $KEYS/kiosk-1.key ]] || fail "keys revoke left kiosk-1.key"
assert_eq "$(generation)" 4 "generation after revoke"
grep -qE '^kiosk-1 +client +[^ ]+ revoked$' "$KEYS/allowed" || fail "kiosk-1 is not revoked in the list: $(cat "$KEYS/allowed")"
expect "$out" "kiosk-1 (client) is revoked" "keys revoke"
run 0 "keys revoke kiosk-1 again" -- keys revoke kiosk-1
expect "$out" "revoked already" "keys revoke again"
assert_eq "$(generation)" 4 "generation after revoking a revoked key"
run 1 "keys add-client kiosk-1 after its revocation" -- keys add-client kiosk-1
expect "$err" "was revoked" "keys add-client of a revoked name"
run 1 "keys revoke of an unknown key" -- keys revoke nobody
expect "$err" "no key 'nobody'" "keys revoke nobody"

step "list and --json after revoke"
run 0 "keys list" -- keys list
grep -qE '^kiosk-1 +client +revoked +.{12}… +-$' "$out" || fail "keys list does not show kiosk-1 revoked, no secret here: $(cat "$out")"
expect "$out" "generation 4, 6 keys (1 revoked)" "keys list"
run 0 "keys list --json" -- keys list --json
json_ok "$out" "keys list --json"
expect "$out" '"generation":4' "keys list --json"
expect "$out" '{"name":"kiosk-1","role":"client","state":"revoked","revoked":true,' "keys list --json"
expect "$out" '"secret_here":false}' "keys list --json"
expect "$out" '"unlisted":[]' "keys list --json"
touch "$KEYS/stray.key"
run 0 "keys list with a stray key file" -- keys list --json
expect "$out" '"unlisted":["stray.key"]' "keys list --json with stray.key"
rm "$KEYS/stray.key"

step "the admin keys: never the last, and not pifs-admin's own without --force"
run 1 "keys revoke admin, the last admin key" -- keys revoke admin
expect "$err" "the last admin key" "keys revoke admin"
run 3 "keys add-admin alice" -- keys add-admin alice
expect "$out" "pifs-admin --key alice" "keys add-admin"
run 1 "keys revoke admin, pifs-admin's own" -- keys revoke admin
expect "$err" "--force" "keys revoke admin without --force"
KEY=alice
run 1 "--key alice keys revoke alice, its own" -- keys revoke alice
expect "$err" "'alice' is the key this pifs-admin uses" "--key alice keys revoke alice"
KEY=
[[ -f $KEYS/admin.key && -f $KEYS/alice.key ]] || fail "a refused revoke deleted a key file"
run 3 "keys revoke admin --force" -- keys revoke admin --force
[[ ! -e $KEYS/admin.key ]] || fail "keys revoke admin --force left admin.key"
# From here on this machine is alice.
KEY=alice
run 1 "keys revoke alice, now the last" -- keys revoke alice --force
expect "$err" "the last admin key" "keys revoke alice"

step "a node's key: add-node, and a new one in place of a revoked one"
run 3 "keys add-node 3" -- keys add-node 3
expect "$err" "has no [node 3] yet" "keys add-node 3"
run 1 "keys add-node 3 again" -- keys add-node 3
expect "$err" "node 3 has a key already" "keys add-node 3 again"
old=$(awk '$1 == "node-3" { print $3 }' "$KEYS/allowed")
run 3 "keys revoke node-3" -- keys revoke node-3
run 3 "keys add-node 3 after its revocation" -- keys add-node 3 --json
expect "$out" '"replaced_revoked":true' "keys add-node 3 --json"
new=$(awk '$1 == "node-3" { print $3 }' "$KEYS/allowed")
[[ -n $new && $new != "$old" ]] || fail "node-3 has no new key: $(cat "$KEYS/allowed")"
grep -qE '^node-3 +node +[^ ]+$' "$KEYS/allowed" || fail "node-3 is not active again: $(cat "$KEYS/allowed")"
assert_eq "$(grep -c '^node-3 ' "$KEYS/allowed")" 1 "lines of node-3"

step "push with nothing running: no node took it"
run 1 "keys push" -- keys push
expect "$err" "no node answered" "keys push"
run 1 "keys push --json" -- keys push --json
json_ok "$out" "keys push --json"
expect "$out" '"action":"push"' "keys push --json"

step "a damaged allow-list is named by its line"
cp "$KEYS/allowed" "$WORK/allowed.good"
awk '/^client / { $2 = "clint" } { print }' "$WORK/allowed.good" >"$KEYS/allowed"
line=$(grep -n '^client ' "$KEYS/allowed" | cut -d: -f1)
run 1 "keys list of a damaged list" -- keys list
expect "$err" "$KEYS/allowed:$line: unknown role 'clint' for key 'client'" "keys list of a damaged list"
run 1 "keys add-client on a damaged list" -- keys add-client kiosk-3
[[ ! -e $KEYS/kiosk-3.key ]] || fail "add-client on a damaged list made kiosk-3.key"
cp "$WORK/allowed.good" "$KEYS/allowed"

step "a leftover key file blocks init and add, with the next step"
mv "$KEYS/allowed" "$WORK/allowed.moved"
run 1 "keys init over leftover key files" -- keys init
expect "$err" "move its .key files away" "keys init over leftovers"
mv "$WORK/allowed.moved" "$KEYS/allowed"
cp "$KEYS/client.key" "$KEYS/kiosk-9.key"
run 1 "keys add-client over a leftover key file" -- keys add-client kiosk-9
expect "$err" "a left-over? move it away" "keys add-client over a leftover"
rm "$KEYS/kiosk-9.key"

step "security = none: the files still work, and it says so"
sed 's/^replicas = 1$/replicas = 1\nsecurity = none/' "$CONF" >"$WORK/none.conf"
rc=0
"$ADMIN" -c "$WORK/none.conf" keys list >"$out" 2>"$err" || rc=$?
assert_eq "$rc" 0 "keys list with security = none"
expect "$err" "security = none" "keys list with security = none"
expect "$err" "anyone on the network can read and destroy" "keys list with security = none"
rm -rf "$WORK/keys2"
sed "s|^keys = .*|keys = $WORK/keys2|" "$WORK/none.conf" >"$WORK/none2.conf"
rc=0
"$ADMIN" -c "$WORK/none2.conf" keys init --json >"$out" 2>"$err" || rc=$?
assert_eq "$rc" 0 "keys init --json with security = none"
json_ok "$out" "keys init --json"
expect "$out" '"security":"none"' "keys init --json with security = none"
expect "$out" '"generation":1' "keys init --json"
assert_eq "$(grep -o '"name":' "$out" | wc -l)" 4 "keys made by init --json"

step "export: one file of the key and the list, mode 600"
PI=$WORK/pi
PICONF=$WORK/pi.conf
sed "s|^keys = .*|keys = $PI/keys|" "$CONF" >"$PICONF"
run 0 "keys export node-1 -o" -- keys export node-1 -o "$WORK/node-1.keys"
assert_eq "$(mode_of "$WORK/node-1.keys")" 600 "mode of the bundle"
expect "$out" "wrote $WORK/node-1.keys (mode 600): the key pair of node-1 (node)" "keys export"
expect "$out" "to node 1 at 127.0.0.1 only; there run 'pifs-admin keys import $WORK/node-1.keys'" "keys export"
head -n 1 "$WORK/node-1.keys" | grep -q '^# pifs key bundle 1 ' || fail "the bundle's first line: $(head -n 1 "$WORK/node-1.keys")"
grep -qx -- '--- node-1.key' "$WORK/node-1.keys" || fail "the bundle has no '--- node-1.key' line"
grep -qx -- '--- allowed' "$WORK/node-1.keys" || fail "the bundle has no '--- allowed' line"
grep -qxF -- "$(grep '^secret = ' "$KEYS/node-1.key")" "$WORK/node-1.keys" || fail "the bundle has not node-1's secret"
# To standard output: a file it is redirected to is made mode 600 first.
rm -f "$WORK/client.keys"
rc=0
(umask 022 && keys export client >"$WORK/client.keys" 2>"$err") || rc=$?
assert_eq "$rc" 0 "keys export client > FILE"
assert_eq "$(mode_of "$WORK/client.keys")" 600 "mode of a bundle written through a redirect"
expect "$err" "wrote to standard output: the key pair of client (client)" "keys export to standard output"
run 0 "keys export --json" -- keys export node-2 -o "$WORK/node-2.keys" --json
json_ok "$out" "keys export --json"
expect "$out" '"action":"export","name":"node-2","role":"node"' "keys export --json"
expect "$out" "\"generation\":$(generation)" "keys export --json"
# Never to a terminal.
if command -v script >/dev/null; then
	rc=0
	script -qec "$ADMIN -c $CONF keys export client" /dev/null >"$out" 2>&1 </dev/null || rc=$?
	assert_eq "$rc" 2 "keys export to a terminal"
	expect "$out" "not to a terminal: give -o FILE, or redirect it" "keys export to a terminal"
	grep -q '^secret' "$out" && fail "keys export wrote a secret to a terminal"
fi

step "import on a new machine: the same two files, modes 600 and 700"
[[ ! -e $PI ]] || fail "$PI exists before the import"
run 0 "keys import node-1.keys" -- "$ADMIN" -c "$PICONF" keys import "$WORK/node-1.keys"
assert_files_same "$PI/keys/allowed" "$KEYS/allowed" "allowed, imported"
assert_files_same "$PI/keys/node-1.key" "$KEYS/node-1.key" "node-1.key, imported"
assert_eq "$(mode_of "$PI/keys")" 700 "mode of the imported key directory"
assert_eq "$(mode_of "$PI/keys/allowed")" 600 "mode of the imported allowed"
assert_eq "$(mode_of "$PI/keys/node-1.key")" 600 "mode of the imported node-1.key"
assert_eq "$(find "$PI" -mindepth 2 | wc -l)" 2 "files in the imported key directory"
expect "$out" "wrote $PI/keys/node-1.key (node-1, node; mode 600) and $PI/keys/allowed" "keys import"
expect "$out" "there was none" "keys import"
expect "$out" "pifs-storaged -c $PICONF --node 1" "keys import"
run 0 "keys import node-1.keys again" -- "$ADMIN" -c "$PICONF" keys import "$WORK/node-1.keys"
expect "$out" "kept $PI/keys/node-1.key (node-1, node; already here)" "keys import again"
run 0 "keys import client.keys --json" -- "$ADMIN" -c "$PICONF" keys import "$WORK/client.keys" --json
json_ok "$out" "keys import --json"
expect "$out" '"action":"import"' "keys import --json"
expect "$out" '"name":"client","role":"client"' "keys import --json"
expect "$out" '"key_written":true' "keys import --json"
expect "$out" "\"generation\":$(generation),\"generation_before\":$(generation)}" "keys import --json"
assert_files_same "$PI/keys/client.key" "$KEYS/client.key" "client.key, imported"

step "export refuses admin keys without --force, revoked keys, and keys not here"
run 1 "keys export alice" -- keys export alice -o "$WORK/alice.keys"
expect "$err" "'alice' is an admin key" "keys export alice"
expect "$err" "--force" "keys export alice"
[[ ! -e $WORK/alice.keys ]] || fail "a refused export wrote alice.keys"
run 0 "keys export alice --force" -- keys export alice --force -o "$WORK/alice.keys"
run 1 "keys export kiosk-1, revoked" -- keys export kiosk-1 -o "$WORK/kiosk-1.keys"
expect "$err" "'kiosk-1' is revoked" "keys export kiosk-1"
[[ ! -e $WORK/kiosk-1.keys ]] || fail "a refused export wrote kiosk-1.keys"
mv "$KEYS/node-2.key" "$WORK/node-2.key.away"
run 1 "keys export node-2 without its key file" -- keys export node-2 -o "$WORK/node-2b.keys"
expect "$err" "node-2.key is not in $KEYS" "keys export node-2 without node-2.key"
mv "$WORK/node-2.key.away" "$KEYS/node-2.key"
run 1 "keys export nobody" -- keys export nobody -o "$WORK/nobody.keys"
expect "$err" "no key 'nobody'" "keys export nobody"
before=$(cd "$KEYS" && sha256sum -- *)
run 1 "keys export into the key directory" -- keys export node-1 -o "$KEYS/node-1.key"
expect "$err" "is in the key directory $KEYS, whose files it could replace" "keys export -o KEYS/node-1.key"
assert_eq "$(cd "$KEYS" && sha256sum -- *)" "$before" "the key directory after a refused export"

step "import refuses a bundle older than the list here, and writes nothing"
# The list changes after node-1.keys was made; client.keys, made now, is newer.
run 3 "keys add-client kiosk-6" -- keys add-client kiosk-6
run 0 "keys export client, newer" -- keys export client -o "$WORK/client.keys"
run 0 "keys import the newer client.keys" -- "$ADMIN" -c "$PICONF" keys import "$WORK/client.keys"
expect "$out" "(generation $(generation); was $(($(generation) - 1)))" "keys import of a newer list"
assert_files_same "$PI/keys/allowed" "$KEYS/allowed" "allowed, imported again"
rm "$PI/keys/node-1.key"
before=$(cd "$PI/keys" && sha256sum -- *)
run 1 "keys import of an older bundle" -- "$ADMIN" -c "$PICONF" keys import "$WORK/node-1.keys"
expect "$err" "is generation $(generation), newer than the bundle's $(($(generation) - 1))" "keys import of an older bundle"
expect "$err" "export a new bundle" "keys import of an older bundle"
assert_eq "$(cd "$PI/keys" && sha256sum -- *)" "$before" "the key directory after a refused import"

step "import refuses a tampered bundle, and writes nothing"
PI2CONF=$WORK/pi2.conf
sed "s|^keys = .*|keys = $WORK/pi2/keys|" "$CONF" >"$PI2CONF"
run 0 "keys export node-1, fresh" -- keys export node-1 -o "$WORK/node-1.keys"
# Its key gone from its list.
sed '/^node-1 /d' "$WORK/node-1.keys" >"$WORK/t1.keys"
chmod 600 "$WORK/t1.keys"
line=$(grep -n '^--- node-1.key$' "$WORK/t1.keys" | cut -d: -f1)
run 1 "keys import of a bundle whose key is not in its list" -- "$ADMIN" -c "$PI2CONF" keys import "$WORK/t1.keys"
expect "$err" "$WORK/t1.keys:$line: key 'node-1' is not in the bundle's allow-list" "keys import of t1.keys"
expect "$err" "nothing was written" "keys import of t1.keys"
# Another key's secret in place of its own.
awk -v s="$(grep '^secret = ' "$KEYS/client.key")" '/^secret = / { $0 = s } { print }' \
	"$WORK/node-1.keys" >"$WORK/t2.keys"
chmod 600 "$WORK/t2.keys"
line=$(grep -n '^secret = ' "$WORK/t2.keys" | cut -d: -f1)
run 1 "keys import of a bundle with another key's secret" -- "$ADMIN" -c "$PI2CONF" keys import "$WORK/t2.keys"
expect "$err" "$WORK/t2.keys:$line: the secret key does not belong to the public key of line $((line - 1))" "keys import of t2.keys"
grep -qF -- "$(sed -n 's/^secret = //p' "$KEYS/client.key")" "$err" && fail "a message quotes a secret"
# Another public half for it in its list (a key of the other cluster).
awk -v p="$(sed -n 's/^public = //p' "$WORK/keys2/client.key")" '$1 == "node-1" && NF == 3 { $3 = p } { print }' \
	"$WORK/node-1.keys" >"$WORK/t3.keys"
chmod 600 "$WORK/t3.keys"
line=$(grep -n '^node-1 ' "$WORK/t3.keys" | cut -d: -f1)
kline=$(grep -n '^--- node-1.key$' "$WORK/t3.keys" | cut -d: -f1)
run 1 "keys import of a bundle whose list has another public key" -- "$ADMIN" -c "$PI2CONF" keys import "$WORK/t3.keys"
expect "$err" "$WORK/t3.keys:$line: the allow-list has another public key for 'node-1' than its key section (line $kline)" "keys import of t3.keys"
# Readable by others.
cp "$WORK/node-1.keys" "$WORK/t4.keys"
chmod 644 "$WORK/t4.keys"
run 1 "keys import of a bundle others may read" -- "$ADMIN" -c "$PI2CONF" keys import "$WORK/t4.keys"
expect "$err" "group or others may use this key bundle (mode 0644): run 'chmod 600" "keys import of t4.keys"
[[ ! -e $WORK/pi2 ]] || fail "a refused import wrote $(find "$WORK/pi2")"
run 0 "keys import of the bundle as made" -- "$ADMIN" -c "$PI2CONF" keys import "$WORK/node-1.keys"

step "import keeps the key a machine has: another key of that name is refused"
cp "$WORK/keys2/client.key" "$PI/keys/client.key"
before=$(cd "$PI/keys" && sha256sum -- *)
run 1 "keys import over another client.key" -- "$ADMIN" -c "$PICONF" keys import "$WORK/client.keys"
expect "$err" "$PI/keys/client.key holds another key 'client' than the bundle" "keys import over another key"
expect "$err" "move $PI/keys/client.key away, then import again" "keys import over another key"
assert_eq "$(cd "$PI/keys" && sha256sum -- *)" "$before" "the key directory after a refused import"
