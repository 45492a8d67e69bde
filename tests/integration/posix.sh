#!/usr/bin/env bash
# posix.sh - run the posix Criterion binary ($PIFS_POSIX) against a fresh cluster's mount.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${PIFS_POSIX:?PIFS_POSIX must name the posix test binary (ctest sets it)}"
[[ -x $PIFS_POSIX ]] || fail "$PIFS_POSIX is missing: build the tree first"
it_setup --nodes 3 --replicas 2
step "running $PIFS_POSIX against $MNT"
PIFS_MNT=$MNT "$PIFS_POSIX" --jobs 2 || fail "some POSIX behaviour is wrong (Criterion's report is above)"
