#!/usr/bin/env bash
# Fetch the third-party guests the guest suite boots, from Debian's packages, without
# installing them system-wide: the Linux PV kernel (linux-image-amd64), busybox-static
# (for an initramfs) and GRUB's PV build (grub-xen-bin). They are unpacked under
# build/debian/ (vmlinuz-*, busybox, grub). Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/debian
mkdir -p "$out/pkgs"
if ! ls "$out"/vmlinuz-* >/dev/null 2>&1 || [ ! -x "$out/busybox" ]; then
  if [ -z "$(ls /var/lib/apt/lists/ 2>/dev/null | grep -v -e lock -e partial)" ] || [ "${FETCH_APT_UPDATE:-1}" = 1 ]; then
    apt-get update -qq || true
  fi
  kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  [ -n "$kpkg" ] || { echo "fetch-debian-guests: no linux-image package found" >&2; exit 1; }
  (cd "$out/pkgs" && apt-get download -qq "$kpkg" busybox-static grub-xen-bin 2>&1 | tail -1 || true)
  for deb in "$out"/pkgs/*.deb; do
    [ -f "$deb" ] || continue
    dpkg-deb -x "$deb" "$out/root"
  done
  cp "$out"/root/boot/vmlinuz-* "$out"/ 2>/dev/null || true
  [ -x "$out/root/bin/busybox" ] && cp "$out/root/bin/busybox" "$out/busybox"
  [ -d "$out/root/usr/lib/grub/x86_64-xen" ] && cp -r "$out/root/usr/lib/grub/x86_64-xen" "$out/grub"
fi
ls "$out"
