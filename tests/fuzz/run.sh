#!/usr/bin/env bash
# run.sh - build the libFuzzer targets with clang and run each one for a
# while on a copy of its committed corpus.
#
#   tests/fuzz/run.sh [--minutes M] [--targets a,b] [--merge] [--jobs N]
#
#   --minutes M   minutes per target, one after another (default 10, the
#                 issue's minimum; whole numbers or decimals such as 0.5)
#   --targets     comma-separated, from: proto frame snapshot raftlog config keys
#                 bundle (default: all of them)
#   --merge       afterwards, merge the inputs that add coverage into the
#                 committed corpus (tests/fuzz/corpus/<target>/, minimised
#                 by libFuzzer's -merge=1); without it the corpus is untouched
#   --jobs N      build parallelism (default 2)
#
# Crashes, leaks, timeouts and OOMs land in tests/fuzz/crashes/<target>/
# (not committed: once the bug is fixed, copy the input into the corpus so
# that the suite replays it). Logs stay in build-fuzz/fuzz-logs/. Prints one
# line per target: executions, coverage features, crashes. Exits 1 when a
# target crashed. Every run is bounded: libFuzzer stops at -max_total_time,
# one input may take 25 s at most, and the whole run of a target is killed
# two minutes past its time.
set -euo pipefail

ALL="proto frame snapshot raftlog config keys bundle"
minutes=10
targets=$ALL
merge=0
jobs=2
while [ $# -gt 0 ]; do
	case $1 in
	--minutes) minutes=$2; shift 2 ;;
	--targets) targets=${2//,/ }; shift 2 ;;
	--merge) merge=1; shift ;;
	--jobs) jobs=$2; shift 2 ;;
	-h | --help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "run.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
	esac
done
for t in $targets; do
	case " $ALL " in *" $t "*) ;; *) echo "run.sh: unknown target '$t' (targets: $ALL)" >&2; exit 2 ;; esac
done
seconds=$(awk -v m="$minutes" 'BEGIN { s = int(m * 60); if (s < 1) exit 1; print s }') || {
	echo "run.sh: --minutes wants a positive number" >&2
	exit 2
}

src=$(cd "$(dirname "$0")/../.." && pwd)
build=$src/build-fuzz
fuzzdir=$src/tests/fuzz

if ! command -v clang >/dev/null; then
	echo "run.sh: clang is missing; installing it with apt-get" >&2
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq clang
fi

# All temporary files of the run (working corpora, and the fuzz targets'
# own temp files: they honour TMPDIR) live in one directory, removed at exit
# whatever happens.
tmp=$(mktemp -d /tmp/pifs-fuzz-run-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

CC=clang cmake -S "$src" -B "$build" -DPIFS_FUZZ=ON -DPIFS_TESTS=OFF \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$jobs" --target $(printf 'fuzz_%s ' $targets) >/dev/null
mkdir -p "$build/fuzz-logs"

crashed=0
summary=()
for t in $targets; do
	bin=$build/tests/fuzz/fuzz_$t
	work=$tmp/corpus-$t
	crashes=$fuzzdir/crashes/$t
	log=$build/fuzz-logs/$t.log
	mkdir -p "$work" "$crashes" "$tmp/tmp"
	cp "$fuzzdir/corpus/$t/"* "$work/" 2>/dev/null || true
	before=$(find "$crashes" -type f | wc -l)
	echo "run.sh: $t for $minutes min (log: $log)" >&2
	rc=0
	TMPDIR=$tmp/tmp timeout -k 10 $((seconds + 120)) "$bin" -max_total_time="$seconds" \
		-rss_limit_mb=1024 -timeout=25 -print_final_stats=1 \
		-artifact_prefix="$crashes/" "$work" >"$log" 2>&1 || rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	ft=$(grep -oE '^#[0-9]+.* ft: [0-9]+' "$log" | tail -1 | sed 's/.* ft: //')
	cov=$(grep -oE '^#[0-9]+.* cov: [0-9]+' "$log" | tail -1 | sed 's/.* cov: //')
	if [ -z "$execs" ]; then
		execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
	fi
	after=$(find "$crashes" -type f | wc -l)
	found=$((after - before))
	note=""
	if [ "$found" -gt 0 ]; then
		crashed=1
		note=" ($(ls -t "$crashes" | head -1 | sed "s|^|tests/fuzz/crashes/$t/|"))"
	elif [ "$rc" -ne 0 ]; then
		crashed=1
		note=" (exit $rc without an artifact: see $log)"
	fi
	corpus_in=$(find "$fuzzdir/corpus/$t" -type f | wc -l)
	corpus_out=$(find "$work" -type f | wc -l)
	if [ "$merge" -eq 1 ] && [ "$found" -eq 0 ]; then
		TMPDIR=$tmp/tmp timeout -k 10 600 "$bin" -merge=1 -rss_limit_mb=1024 -timeout=25 \
			"$fuzzdir/corpus/$t" "$work" >>"$log" 2>&1
		corpus_out="$(find "$fuzzdir/corpus/$t" -type f | wc -l) committed after merge"
	fi
	summary+=("$(printf '%-8s %s min  executions %s  coverage %s edges, %s features  corpus %s -> %s  crashes %s%s' \
		"$t" "$minutes" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$corpus_in" "$corpus_out" "$found" "$note")")
	rm -rf "$work"
done
printf '%s\n' "${summary[@]}"
exit $crashed
