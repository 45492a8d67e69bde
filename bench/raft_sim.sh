#!/bin/sh
# raft_sim.sh - run the seeded Raft simulation of tests/unit/test_raft.c
# over many seeds and print how long the voters take to replace a crashed
# leader (virtual time from the crash to a new leader able to commit), for
# three and five voters.
#
#   bench/raft_sim.sh [build-dir] [seeds]     (defaults: ./build, 20000)
set -eu

build=${1:-build}
seeds=${2:-20000}
src=$(cd "$(dirname "$0")/.." && pwd)

[ -f "$build/CMakeCache.txt" ] || cmake -S "$src" -B "$build" >/dev/null
cmake --build "$build" -j2 --target test_raft >/dev/null
for n in 3 5; do
	printf '%s voters, %s seeds: ' "$n" "$seeds"
	PIFS_RAFT_VOTERS=$n PIFS_RAFT_SEEDS=$seeds PIFS_RAFT_STATS=1 \
		"$build/tests/test_raft" --filter 'raft_sim/*' 2>&1 |
		grep -E '^election|^power cuts|seed [0-9]+:' || echo 'no figures (see the test output)'
done
