#!/usr/bin/env bash
# Proves that a fresh clone builds on a case-insensitive filesystem (as on macOS or Windows), and
# that the tree before the CLI moved to Sources/ApixoCLI (512d33f) did not. Mounts, in order: an
# ext4 image with casefold (a casefolded directory via chattr +F), a vfat image on a loop device
# (both need root and kernel support: CONFIG_UNICODE, the vfat driver), or else a FAT32 image
# through FUSE (fusefat, dosfstools). Checks that the mount folds case, clones the repository into
# it and builds the library and CLI targets there (scratch path outside: FAT has no symlinks);
# then checks out 512d33f^ next to it and expects the collision (files found at a spelling the
# index does not list) and the build error. Exits 3 when no case-insensitive filesystem can be mounted.
set -uo pipefail
root="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
SWIFT="${SWIFT:-$(command -v swift || echo /opt/swift/usr/bin/swift)}"
OLD=375d62214502fc00e7876a383ce56cef14ed13a4   # 512d33f^: Sources/Apixo and Sources/apixo
work=$(mktemp -d)
mnt="$work/mnt"
mkdir -p "$mnt"
unmount() {
  mountpoint -q "$mnt" || return 0
  fusermount -u "$mnt" 2>/dev/null || umount "$mnt"
}
cleanup() { unmount; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

try_mount() {  # kind: prints the error of the failing step, returns 0 once mounted
  local img="$work/$1.img"
  rm -f "$img"
  truncate -s 600M "$img"
  case "$1" in
    casefold) mkfs.ext4 -q -F -O casefold "$img" 2>&1 || return 1 ;;
    vfat|fuse) command -v mkfs.vfat >/dev/null || { echo "mkfs.vfat not installed (dosfstools)"; return 1; }
          mkfs.vfat -F 32 "$img" >/dev/null 2>&1 || return 1 ;;
  esac
  if [ "$1" = fuse ]; then
    command -v fusefat >/dev/null || { echo "fusefat not installed"; return 1; }
    [ -c /dev/fuse ] || { echo "no /dev/fuse"; return 1; }
    # rw+: fusefat's (experimental) writes. direct_io: through the page cache, reads of files
    # it had written came back corrupt (swiftc saw `li` for `list`); -s: one thread.
    fusefat -s -o rw+,direct_io "$img" "$mnt" >"$work/fusefat.log" 2>&1 || { tail -1 "$work/fusefat.log"; return 1; }
  else
    mount -o loop "$img" "$mnt" 2>&1 || { dmesg 2>/dev/null | tail -1; return 1; }
  fi
  if [ "$1" = casefold ]; then
    mkdir "$mnt/ci" && chattr +F "$mnt/ci" 2>&1 || return 1
  else
    mkdir "$mnt/ci"
  fi
  return 0
}

dir=""
for kind in casefold vfat fuse; do
  if out=$(try_mount "$kind"); then dir="$mnt/ci"; echo "case_fs_build: $kind filesystem mounted"; break; fi
  echo "case_fs_build: $kind: cannot mount a case-insensitive filesystem here: ${out//$'\n'/ | }"
  unmount
done
[ -n "$dir" ] || exit 3

# The filesystem really folds case.
touch "$dir/probe" && [ -e "$dir/PROBE" ] || { echo "case_fs_build: $dir does not fold case"; exit 3; }
rm -f "$dir/probe"

# checkout DEST [COMMIT]: a clone whose git directory is outside (fusefat has no chmod, which git
# needs for its config); the settings git picks on its own on FAT are given, since its probes run
# in the git directory. The repository has no symlinks (Tests/abi/case_check.sh keeps it so).
checkout() {
  git clone -q --no-hardlinks --no-checkout --separate-git-dir="$work/git-$1" \
      -c core.ignoreCase=true -c core.fileMode=false -c core.symlinks=false "$root" "$dir/$1" || return 1
  git -C "$dir/$1" checkout -q "${2:-HEAD}" >/dev/null 2>&1 || return 1
}
# strays DEST: the paths the folder shows that the index does not list, byte for byte (where two
# paths differ only in case, one of them is found at the other's spelling or not at all).
strays() {
  comm -13 <(git -C "$dir/$1" ls-files | LC_ALL=C sort) \
           <(cd "$dir/$1" && find . -type f ! -path ./.git | sed 's|^\./||' | LC_ALL=C sort)
}

checkout apixo || { echo "case_fs_build: cannot clone into $dir"; exit 1; }
bad=$(strays apixo)
if [ -n "$bad" ]; then
  echo "case_fs_build: FAIL: the checkout holds paths the index does not (paths that collide in case):"
  echo "$bad" | head
  exit 1
fi
for target in ApixoCLI ApixoC; do   # ApixoCLI builds Apixo and its dependencies; no test targets
  "$SWIFT" build -q --package-path "$dir/apixo" --scratch-path "$work/build" --target "$target" \
      >"$work/build.log" 2>&1 || { tail -20 "$work/build.log"; echo "case_fs_build: FAIL: $target does not build"; exit 1; }
done
echo "case_fs_build: HEAD ($(git -C "$dir/apixo" ls-files | wc -l) files) checks out whole and builds ApixoCLI and ApixoC on the case-insensitive mount"

# The negative: before 512d33f the CLI's Sources/apixo fell into Sources/Apixo.
git -C "$root" cat-file -e "$OLD^{commit}" 2>/dev/null ||
  { echo "case_fs_build: FAIL: $OLD is not in this clone (shallow?); the negative needs it"; exit 1; }
checkout old "$OLD" || { echo "case_fs_build: cannot check out $OLD"; exit 1; }
bad=$(strays old)
if [ -z "$bad" ]; then
  echo "case_fs_build: FAIL: $OLD checked out as the index lists it: the mount does not fold case as expected"
  exit 1
fi
"$SWIFT" build --package-path "$dir/old" --scratch-path "$work/build-old" --target Apixo >"$work/old.log" 2>&1
rc=$?
if [ "$rc" = 0 ] || ! grep -q "'Apixo' was identified as an executable target" "$work/old.log"; then
  tail -20 "$work/old.log"
  echo "case_fs_build: FAIL: $OLD was expected not to build, with Apixo taken for an executable target (rc $rc)"
  exit 1
fi
echo "case_fs_build: ${OLD:0:7} (512d33f^) collides: $(echo "$bad" | wc -l) files are not where the index puts them, e.g. $(echo "$bad" | grep -m1 main.swift)"
echo "case_fs_build: and swift build fails there:"
grep -m1 "^error:" "$work/old.log" | sed 's/^/  /'
echo "case_fs_build: a fresh clone builds on a case-insensitive filesystem"
