#!/usr/bin/env bash
# Build the emulated Raspberry Pi OS root filesystem: arm64 Debian 12 (bookworm)
# with what Raspberry Pi OS Bookworm brings that rover's install relies on.
#
#   tests/pi/build-rootfs.sh OUT_DIR MIRROR
#
# OUT_DIR must not exist; the rootfs is built in OUT_DIR.tmp and renamed when
# complete, so an interrupted build never looks finished. MIRROR is a Debian
# archive URL (the harness takes it from this machine's apt configuration).
# Needs root, debootstrap and a qemu-aarch64 binfmt_misc entry with the F flag
# (qemu-user-static), so the arm64 programs of the second stage run.
# The harness caches OUT_DIR keyed by a hash of this file: change the recipe
# here and the next run rebuilds it.
set -euo pipefail
out="${1:?usage: build-rootfs.sh OUT_DIR MIRROR}"
mirror="${2:?usage: build-rootfs.sh OUT_DIR MIRROR}"
tmp="$out.tmp"
[ ! -e "$out" ] || { echo "build-rootfs.sh: $out exists" >&2; exit 2; }
rm -rf "$tmp"
mkdir -p "$(dirname "$out")"

# What Raspberry Pi OS Bookworm (Lite) has from apt that matters to rover:
#  python3 3.11 with venv and pip; python3-numpy 1.24.2, the numpy every apt
#  Python package there (picamera2, simplejpeg, libcamera's bindings) is built
#  against; the compiler and headers (build-essential and python3-dev are in
#  the image: the picamera2 stand-in's C extension is built with them, as
#  simplejpeg's was built against python3-numpy); make, git, sudo, systemd.
packages=(
    python3 python3-venv python3-pip python3-numpy python3-dev
    gcc libc6-dev make git sudo ca-certificates
    systemd systemd-sysv dbus udev
)
include="$(IFS=,; echo "${packages[*]}")"
debootstrap --arch=arm64 --variant=minbase --include="$include" \
    bookworm "$tmp" "$mirror"

# The groups Raspberry Pi OS has for its devices (the camera's video group
# comes with Debian; gpio and i2c are Raspberry Pi OS's own).
for group in gpio i2c spi; do
    chroot "$tmp" getent group "$group" >/dev/null || chroot "$tmp" groupadd --system "$group"
done
# The login user of a Raspberry Pi OS image, with sudo.
chroot "$tmp" useradd --create-home --shell /bin/bash --groups sudo,video,gpio,i2c pi
echo "raspberrypi" >"$tmp/etc/hostname"
printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$mirror" "$mirror" >"$tmp/etc/apt/sources.list"
# apt's package lists, so the installer's apt-get finds packages offline of an update.
chroot "$tmp" apt-get update -qq
chroot "$tmp" apt-get clean
mv "$tmp" "$out"
echo "build-rootfs.sh: built $out"
