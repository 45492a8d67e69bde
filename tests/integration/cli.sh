#!/usr/bin/env bash
# cli.sh - every program explains itself with --help, refuses an unknown flag
# with status 2, names FILE:LINE of a bad configuration line, and pifs-admin
# says what to do when nothing answers. No cluster runs here.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

it_workdir
# Where run (lib.sh) keeps what a command printed.
out=$WORK/out
err=$WORK/err

expect_usage() {
	grep -qiE 'usage|synopsis' "$out" || fail "$1: no usage text (Usage or SYNOPSIS) on stdout"
}

step "--help of every program"
run 0 "pifs-storaged --help" -- "$STORAGED" --help
expect_usage "pifs-storaged --help"
run 0 "pifs-mount --help" -- "$MOUNT" --help
expect_usage "pifs-mount --help"
run 0 "pifs-admin --help" -- "$ADMIN" --help
expect_usage "pifs-admin --help"
for c in status nodes node meta df scrub heal rebalance gc; do
	run 0 "pifs-admin $c --help" -- "$ADMIN" "$c" --help
	grep -q "Usage: pifs-admin .* $c" "$out" || fail "pifs-admin $c --help does not show its own usage"
	grep -q "Exit status" "$out" || fail "pifs-admin $c --help does not give its exit status"
done
run 0 "pifs-local --help" -- "$PIFS_LOCAL" --help
expect_usage "pifs-local --help"
for c in up stop start heal add; do
	run 0 "pifs-local $c --help" -- "$PIFS_LOCAL" "$c" --help
	expect_usage "pifs-local $c --help"
done
run 0 "bootstrap --help" -- "$IT_SRC/tools/bootstrap" --help
expect_usage "bootstrap --help"

step "an unknown flag exits 2 with a message"
mkdir -p "$WORK/m"
run 2 "pifs-storaged with an unknown flag" -- "$STORAGED" --no-such-flag
[[ -s $err ]] || fail "pifs-storaged --no-such-flag printed nothing on stderr"
run 2 "pifs-mount with an unknown flag" -- "$MOUNT" --no-such-flag "$WORK/m"
[[ -s $err ]] || fail "pifs-mount --no-such-flag printed nothing on stderr"
for args in "--no-such-flag status" "status --no-such-flag" "-Z df" "nodes extra" "frobnicate" "" \
	"--timeout soon status" "--config" "status --wait" "df --wait" "heal --timeout soon" \
	"heal --wait extra" "node" "node add" "node remove 3 4 5 6" "status --dry-run" \
	"rebalance --limit fast" "rebalance --limit 0" "gc --limit 5" "rebalance extra" \
	"node add a:1 --weight x" "df --force" "scrub --weight 3" "meta" "meta frob" "meta add" \
	"meta status 2" "meta add 2 3" "meta status --timeout 2s" "meta add 2 --timeout soon"; do
	# shellcheck disable=SC2086 # the words are the arguments
	run 2 "pifs-admin $args" -- "$ADMIN" $args
	grep -q '^pifs-admin: ' "$err" || fail "pifs-admin $args: no 'pifs-admin: ...' message"
	grep -q "Try 'pifs-admin --help'" "$err" || fail "pifs-admin $args: no hint to --help"
done
run 2 "pifs-local with an unknown flag" -- "$PIFS_LOCAL" up "$WORK/c" --no-such-flag
[[ -s $err ]] || fail "pifs-local up --no-such-flag printed nothing on stderr"
[[ ! -e $WORK/c/pifs.conf ]] || fail "pifs-local up with a bad flag still wrote a configuration"
run 2 "pifs-local up with a bad --set" -- "$PIFS_LOCAL" up "$WORK/c" --set "down_after 2s"
[[ ! -e $WORK/c/pifs.conf ]] || fail "pifs-local up with a bad --set still wrote a configuration"
run 2 "pifs-local stop without NODE" -- "$PIFS_LOCAL" stop "$WORK/c"
run 2 "pifs-local start with --kill" -- "$PIFS_LOCAL" start "$WORK/c" 1 --kill
run 2 "pifs-local add without DIR" -- "$PIFS_LOCAL" add
run 2 "pifs-local add with a bad --weight" -- "$PIFS_LOCAL" add "$WORK/c" --weight heavy
run 2 "bootstrap with an unknown flag" -- "$IT_SRC/tools/bootstrap" --no-such-flag

step "a bad configuration line is named as FILE:LINE:"
port=17390
while [[ -n $(ss -ltnH "sport = :$port") ]]; do port=$((port + 1)); done
good() {
	cat <<CONF
[cluster]
replicas = 1
chunk_size = 1M
keys = $WORK/keys
[node 1]
address = 127.0.0.1:$port
data = $WORK/node1
meta = yes
CONF
}
good >"$WORK/good.conf"
# Line 6 (address) misspelt.
good | sed 's/^address/adress/' >"$WORK/key.conf"
# Line 3 is not a key = value line at all.
good | sed '3s/.*/this line makes no sense/' >"$WORK/garbage.conf"
for f in key garbage; do
	line=$( [[ $f == key ]] && echo 6 || echo 3)
	run 2 "pifs-storaged with $f.conf" -- "$STORAGED" -c "$WORK/$f.conf" --node 1 --data "$WORK/node1"
	grep -q "$f.conf:$line:" "$err" ||
		fail "pifs-storaged does not name $f.conf:$line: for the bad line; it said: $(head -c 300 "$err")"
	run 2 "pifs-admin with $f.conf" -- "$ADMIN" -c "$WORK/$f.conf" status
	grep -q "$f.conf:$line:" "$err" ||
		fail "pifs-admin does not name $f.conf:$line: for the bad line; it said: $(head -c 300 "$err")"
done
run 2 "pifs-admin with a missing configuration file" -- "$ADMIN" -c "$WORK/none.conf" status
grep -q "none.conf" "$err" || fail "pifs-admin does not name the missing file"

step "without keys, nothing starts, and each says how to make them"
run 2 "pifs-storaged without keys" -- "$STORAGED" -c "$WORK/good.conf" --node 1 --data "$WORK/node1"
grep -q "no key 'node-1' at $WORK/keys/node-1.key: make the cluster's keys with 'pifs-admin keys init'" "$err" ||
	fail "pifs-storaged without keys: no clear error: $(head -c 400 "$err")"
run 2 "pifs-admin without keys" -- "$ADMIN" -c "$WORK/good.conf" status
grep -q "security = none" "$err" || fail "pifs-admin without keys does not name the way out: $(head -c 400 "$err")"
"$ADMIN" -c "$WORK/good.conf" keys init >/dev/null || fail "pifs-admin keys init failed"

step "pifs-admin when no metadata service answers"
for c in status nodes df scrub "heal --wait"; do
	# shellcheck disable=SC2086 # the words are the arguments
	run 1 "pifs-admin $c with nothing running" -- "$ADMIN" -c "$WORK/good.conf" --timeout 300ms $c
	grep -q "cannot reach the metadata service at 127.0.0.1:$port (node 1): is pifs-storaged running there?" "$err" ||
		fail "pifs-admin $c: wrong message when nothing answers: $(cat "$err")"
done
for c in "meta status" "meta add 2"; do
	# shellcheck disable=SC2086 # the words are the arguments
	run 1 "pifs-admin $c with nothing running" -- "$ADMIN" -c "$WORK/good.conf" --timeout 300ms $c
	grep -q "no metadata voter answered META_STAT .*node 1 at 127.0.0.1:$port (unreachable).*is pifs-storaged running there?" "$err" ||
		fail "pifs-admin $c: wrong message when no voter answers: $(cat "$err")"
done
