#!/usr/bin/env bash
# tree.sh - a tree of mixed files copied in with cp -a reads back identical:
# from a second mount of the same cluster, and after the whole cluster has been
# stopped and started again.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

it_setup --nodes 3 --replicas 2

SRC=$WORK/src
step "making the source tree in $SRC"
mkdir -p "$SRC/media/2024/05" "$SRC/thumbs" "$SRC/docs/deep/er/still/deeper" "$SRC/empty-dir"
# Incompressible, several chunks, and not a multiple of the chunk size.
head -c $((64 * 1024 * 1024 + 12345)) /dev/urandom >"$SRC/media/2024/05/video.mp4"
RANDOM=42
for ((i = 0; i < 300; i++)); do
	d="$SRC/thumbs/$((i % 12))"
	mkdir -p "$d"
	# 4..200 KiB, not block-aligned.
	head -c $(((4 + RANDOM % 197) * 1024 + RANDOM % 1000)) /dev/urandom >"$d/thumb_$i.jpg"
done
for ((i = 0; i < 50; i++)); do
	if ((i % 2)); then
		f="$SRC/docs/meta_$i.json"
		{
			printf '{"id": %d, "title": "photo %d", "tags": [' "$i" "$i"
			for ((k = 0; k < i * 20; k++)); do printf '"tag%d",' "$k"; done
			printf '"last"], "sha": "%s"}\n' "$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
		} >"$f"
	else
		f="$SRC/docs/deep/er/notes_$i.txt"
		for ((k = 0; k < i * 30; k++)); do
			echo "line $k of note $i: the quick brown fox jumps over the lazy dog"
		done >"$f"
	fi
done
echo "at the bottom" >"$SRC/docs/deep/er/still/deeper/leaf.txt"
: >"$SRC/docs/empty.txt"
ln -s media/2024/05/video.mp4 "$SRC/latest.mp4"
ln -s ../../docs "$SRC/media/2024/docs-link"
chmod 0600 "$SRC/docs/meta_1.json"
chmod 0750 "$SRC/docs/deep"
(cd "$SRC" && echo "$(find . -type f | wc -l) files, $(du -sh . | cut -f1)") | sed 's/^/  source: /'

it_manifest "$SRC" >"$WORK/want.sha"
it_tree_listing "$SRC" >"$WORK/want.ls"
[[ $(wc -l <"$WORK/want.sha") -eq 353 ]] || fail "the source tree has $(wc -l <"$WORK/want.sha") files, not 353"

step "copying the tree in with cp -a"
t0=$SECONDS
cp -a "$SRC" "$MNT/tree" || fail "cp -a $SRC $MNT/tree failed"
step "copied in $((SECONDS - t0))s"

# check_copy ROOT WHEN: every file's content and every entry's metadata match.
# A problem is recorded and the test goes on, so that one run shows which of
# the phases (first mount, second mount, restart) are wrong.
PROBLEMS=()
check_copy() {
	it_manifest "$1" >"$WORK/got.sha"
	if ! diff -u "$WORK/want.sha" "$WORK/got.sha" >"$WORK/diff.sha"; then
		head -n 20 "$WORK/diff.sha"
		PROBLEMS+=("$2: $(grep -c '^+[0-9a-f]' "$WORK/diff.sha") files read back different")
	fi
	it_tree_listing "$1" >"$WORK/got.ls"
	if ! diff -u "$WORK/want.ls" "$WORK/got.ls" >"$WORK/diff.ls"; then
		awk '/^-[^-]/ && m++ < 6; /^\+[^+]/ && p++ < 6' "$WORK/diff.ls"
		PROBLEMS+=("$2: $(grep -c '^+[^+]' "$WORK/diff.ls") entries differ in type, mode, mtime, size or link target")
	fi
	[[ $(readlink "$1/latest.mp4") == media/2024/05/video.mp4 ]] || PROBLEMS+=("$2: readlink latest.mp4")
	cmp -s "$1/latest.mp4" "$SRC/media/2024/05/video.mp4" || PROBLEMS+=("$2: reading through the symlink")
	return 0
}

step "comparing from the first mount"
check_copy "$MNT/tree" "first mount"

step "comparing from a second mount of the same cluster"
it_mount "$WORK/mnt2"
check_copy "$WORK/mnt2/tree" "second mount"

step "unmounting both, stopping the cluster, starting it again"
it_umount "$WORK/mnt2"
"$PIFS_LOCAL" down "$CLUSTER" || fail "pifs-local down failed"
[[ -z $(it_pids_using "$CONF") ]] || fail "a daemon of $CLUSTER still runs after pifs-local down"
"$PIFS_LOCAL" up "$CLUSTER" || fail "pifs-local up (again) failed"

step "comparing after the restart"
check_copy "$MNT/tree" "after a restart of the cluster"

if ((${#PROBLEMS[@]})); then
	printf '  %s\n' "${PROBLEMS[@]}"
	fail "${#PROBLEMS[@]} problems (listed above)"
fi
