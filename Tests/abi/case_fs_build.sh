#!/usr/bin/env bash
# Proves that a fresh clone builds on a case-insensitive filesystem (as on macOS or Windows):
# makes an ext4 image with casefold (a casefolded directory via chattr +F), or failing that a
# vfat image, mounts it on a loop device, clones the repository into it and runs `swift build`
# there (scratch path outside, since vfat has no symlinks). Needs root and kernel support
# (CONFIG_UNICODE for casefold, the vfat driver); says precisely what is missing otherwise and
# exits 3. Not part of `make test`: Tests/abi/case_check.sh is, and holds on any machine.
set -uo pipefail
root="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
SWIFT="${SWIFT:-$(command -v swift || echo /opt/swift/usr/bin/swift)}"
work=$(mktemp -d)
mnt="$work/mnt"
mkdir -p "$mnt"
cleanup() { mountpoint -q "$mnt" && umount "$mnt"; rm -rf "$work"; }
trap cleanup EXIT

try_mount() {  # kind: prints the error of the failing step, returns 0 once mounted
  local img="$work/$1.img"
  truncate -s 600M "$img"
  case "$1" in
    casefold) mkfs.ext4 -q -F -O casefold "$img" 2>&1 || return 1 ;;
    vfat) command -v mkfs.vfat >/dev/null || { echo "mkfs.vfat not installed (dosfstools)"; return 1; }
          mkfs.vfat "$img" >/dev/null 2>&1 || return 1 ;;
  esac
  mount -o loop "$img" "$mnt" 2>&1 || { dmesg 2>/dev/null | tail -1; return 1; }
  if [ "$1" = casefold ]; then
    mkdir "$mnt/ci" && chattr +F "$mnt/ci" 2>&1 || return 1
  else
    mkdir "$mnt/ci"
  fi
  return 0
}

dir=""
for kind in casefold vfat; do
  if out=$(try_mount "$kind"); then dir="$mnt/ci"; echo "case_fs_build: $kind filesystem mounted"; break; fi
  echo "case_fs_build: $kind: cannot mount a case-insensitive filesystem here: ${out//$'\n'/ | }"
  mountpoint -q "$mnt" && umount "$mnt"
done
[ -n "$dir" ] || exit 3

# The filesystem really folds case.
touch "$dir/Probe" && [ -e "$dir/PROBE" ] || { echo "case_fs_build: $dir does not fold case"; exit 3; }
rm -f "$dir/Probe"
git clone -q "$root" "$dir/apixo" || exit 1
if git -C "$dir/apixo" status --porcelain | grep -q .; then
  echo "case_fs_build: the checkout is not clean (paths that collide in case?):"
  git -C "$dir/apixo" status --porcelain | head
  exit 1
fi
"$SWIFT" build --package-path "$dir/apixo" --scratch-path "$work/build" || exit 1
echo "case_fs_build: a fresh clone builds on a case-insensitive filesystem"
