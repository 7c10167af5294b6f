#!/usr/bin/env bash
# Provision everything the project builds and tests with: Debian packages on
# this machine, Xen 4.17 and Debian's kernel unpacked into a lab folder (never
# installed as this machine's hypervisor), and QEMU built from Debian's own
# source package with tests/lab/qemu-svm-fixes.patch.
#
# Idempotent and cached: everything lands under $VMISTUB_LAB_CACHE (default
# /var/cache/vmistub-lab, outside the checkout); a second run takes seconds.
# On success it writes $VMISTUB_LAB_CACHE/lab.env, which tests/lab/lab.py
# reads to find QEMU, Xen, the dom0 kernel and its modules.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${VMISTUB_LAB_CACHE:-/var/cache/vmistub-lab}
mkdir -p "$cache"
exec 9>"$cache/.provision.lock"
flock 9

now() { date +%s%N; }
t0=$(now)
say() { printf 'provision: %s\n' "$*" >&2; }
elapsed() { local ds=$((($(now) - $1) / 100000000)); printf '%d.%d' $((ds / 10)) $((ds % 10)); }

# --- 1. host packages -------------------------------------------------------
# Build tools and libraries for vmistub itself, QEMU's build dependencies for
# an x86_64-softmmu build with user networking, the dom0 userland (busybox)
# and the test harness (gdb, pytest).
host_packages=(
  build-essential meson ninja-build pkg-config clang libclang-rt-14-dev llvm
  libev-dev libxen-dev libcmocka-dev
  gdb python3-pytest binutils file
  busybox-static cpio xz-utils zstd kmod
  dpkg-dev bison flex python3-venv
  libglib2.0-dev libpixman-1-dev libfdt-dev zlib1g-dev libslirp-dev
  seabios ipxe-qemu qemu-system-data
  qemu-system-x86
)
missing=()
for p in "${host_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
say "host packages ready ($(elapsed "$t0") s)"

# --- 2. Xen and the kernel, unpacked ------------------------------------------
# The packages' versions name the folder, so an update unpacks afresh.
kernel_pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [[ -z "$kernel_pkg" ]]; then
  apt-get update -qq
  kernel_pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
fi
[[ -n "$kernel_pkg" ]] || { say "cannot find the kernel package behind linux-image-amd64"; exit 1; }
lab_debs=(
  xen-hypervisor-4.17-amd64 xen-utils-4.17 xen-utils-common xenstore-utils
  libxenmisc4.17 libxenstore4 libxencall1 libxenevtchn1 libxenforeignmemory1
  libxengnttab1 libxentoollog1 libxenhypfs1 libxendevicemodel1 libxentoolcore1
  libyajl2 libncurses6 libtinfo6 libgcc-s1
  "$kernel_pkg"
)
versions=$(apt-cache policy "${lab_debs[@]}" | awk '/^[^ ]/ {p=$1} /Candidate:/ {print p $2}' | sha256sum | cut -c1-16)
root="$cache/root-$versions"
if [[ ! -f "$root/.done" ]]; then
  t=$(now)
  say "downloading and unpacking ${lab_debs[*]}"
  rm -rf "$root" "$cache/debs"
  mkdir -p "$root" "$cache/debs"
  (cd "$cache/debs" && apt-get download -qq "${lab_debs[@]}" 2>&1 | grep -v 'unsandboxed' || true)
  for deb in "$cache"/debs/*.deb; do dpkg-deb -x "$deb" "$root"; done
  touch "$root/.done"
  say "unpacked into $root ($(elapsed "$t") s)"
fi
kver=$(basename "$(ls -d "$root"/lib/modules/*/ | head -1)")

# The kernel's real System.map and its vmlinux with debug information live in
# the matching -dbg package (~860 MB download, ~1 min to unpack): the Linux
# guest's tests need real symbol addresses, and the demo offers source-level
# kernel debugging. Only those two files are kept.
dbg="$cache/kernel-dbg-$kver"
if [[ ! -f "$dbg/.done" ]]; then
  t=$(now)
  say "fetching linux-image-$kver-dbg for System.map and vmlinux"
  rm -rf "$dbg" && mkdir -p "$dbg/debs"
  (cd "$dbg/debs" && apt-get download -qq "linux-image-$kver-dbg" 2>&1 | grep -v unsandboxed || true)
  dpkg-deb --fsys-tarfile "$dbg"/debs/*.deb |
    tar -x -C "$dbg" --strip-components=5 "./usr/lib/debug/boot/System.map-$kver" "./usr/lib/debug/boot/vmlinux-$kver"
  rm -rf "$dbg/debs"
  touch "$dbg/.done"
  say "kernel symbols ready ($(elapsed "$t") s)"
fi
# A .deb carries no modules.dep: depmod writes it (image.py reads it to load
# dom0's modules in dependency order).
[[ -f "$root/lib/modules/$kver/modules.dep" ]] || depmod -b "$root" "$kver"
xen_gz=$(ls "$root"/boot/xen-4.17*-amd64.gz | head -1)
[[ -f "$root/boot/xen.elf" ]] || zcat "$xen_gz" >"$root/boot/xen.elf"

# --- 3. QEMU with the SVM fixes ---------------------------------------------
# Built from Debian's qemu source package; the deb-src entries are derived at
# run time from this machine's own deb822 sources, in a private apt state, so
# nothing under /etc changes.
qemu_configure=(--target-list=x86_64-softmmu --without-default-features
  --disable-docs --disable-werror --enable-slirp --enable-tcg)
qemu_key=$( { cat "$here/qemu-svm-fixes.patch"; echo "${qemu_configure[*]}";
  apt-cache policy qemu-system-x86 | awk '/Candidate:/ {print $2}'; } | sha256sum | cut -c1-16)
qemu_dir="$cache/qemu-$qemu_key"
if [[ ! -x "$qemu_dir/qemu-system-x86_64" ]]; then
  t=$(now)
  src="$cache/src"
  apt_src=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$cache/apt-src"
           -o Dir::State::Lists="$cache/apt-src/lists")
  mkdir -p "$cache/apt-src/lists/partial" "$src"
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] && sed 's/^Types:.*/Types: deb-src/' "$f" >"$cache/apt-src/$(basename "$f")"
  done
  say "fetching Debian's qemu source package"
  apt-get "${apt_src[@]}" update -qq
  rm -rf "$src"/*
  (cd "$src" && apt-get "${apt_src[@]}" source --download-only -qq qemu 2>&1 | grep -v unsandboxed || true)
  (cd "$src" && dpkg-source -x --no-check ./qemu_*.dsc qemu >/dev/null)
  say "patching and building QEMU (several minutes on 2 cores)"
  patch -d "$src/qemu" -p1 --forward --quiet <"$here/qemu-svm-fixes.patch"
  (cd "$src/qemu" && mkdir -p build && cd build &&
    ../configure "${qemu_configure[@]}" >"$cache/qemu-configure.log" 2>&1 &&
    ninja qemu-system-x86_64 >"$cache/qemu-build.log" 2>&1) || {
    say "QEMU build failed; last lines of $cache/qemu-build.log:"
    tail -30 "$cache/qemu-configure.log" "$cache/qemu-build.log" >&2 || true
    exit 1
  }
  mkdir -p "$qemu_dir.part"
  cp "$src/qemu/build/qemu-system-x86_64" "$qemu_dir.part/"
  rm -rf "$qemu_dir" && mv "$qemu_dir.part" "$qemu_dir"
  rm -rf "$src/qemu"
  say "QEMU built in $(elapsed "$t") s"
else
  say "QEMU cached at $qemu_dir"
fi

cat >"$cache/lab.env.part" <<EOF
VMISTUB_LAB_QEMU=$qemu_dir/qemu-system-x86_64
VMISTUB_LAB_ROOT=$root
VMISTUB_LAB_XEN=$root/boot/xen.elf
VMISTUB_LAB_KERNEL=$root/boot/vmlinuz-$kver
VMISTUB_LAB_KVER=$kver
VMISTUB_LAB_SYSTEM_MAP=$dbg/System.map-$kver
VMISTUB_LAB_VMLINUX=$dbg/vmlinux-$kver
EOF
mv "$cache/lab.env.part" "$cache/lab.env"
say "provisioning took $(elapsed "$t0") s"
