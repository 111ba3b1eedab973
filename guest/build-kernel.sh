#!/bin/bash
# build-kernel.sh: build Vireo's test guest kernel from Debian's linux-source-6.1.
#
# Usage: guest/build-kernel.sh [--force] [--from-shared DIR] [--jobs N]
#
#   --force            rebuild even when the outputs are up to date
#   --from-shared DIR  copy a prebuilt vmlinux, bzImage and full.config from DIR
#                      (a directory like ../shared/guest) instead of building,
#                      when DIR has them and was built from the same guest.config
#                      (also: VIREO_SHARED_GUEST=DIR)
#   --jobs N           parallel make jobs (default: nproc)
#
# The outputs land in ${VIREO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vireo}/guest/:
# vmlinux (ELF with the PVH note, what Vireo boots by default), bzImage (LZ4)
# and config (the kernel's full .config). The source tree is unpacked under
# guest/build/ in the same directory and reused while the patches are unchanged;
# the build's output goes to guest/build.log there.
#
# Meant for a Debian 12 machine; missing build dependencies are installed with
# apt-get, which needs root.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
fragment_src="$here/guest.config"
patch_dir="$here/patches"
tarball=/usr/src/linux-source-6.1.tar.xz
tree_name=linux-source-6.1
packages=(linux-source-6.1 build-essential flex bison bc libelf-dev libssl-dev lz4)

cache="${VIREO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vireo}"
out="$cache/guest"
work="$out/build"

force=0
shared="${VIREO_SHARED_GUEST:-}"
jobs=$(nproc)

phase() { printf '==> %s\n' "$*"; }
die() { printf 'build-kernel.sh: %s\n' "$*" >&2; exit 1; }

usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

while [ $# -gt 0 ]; do
	case "$1" in
	--force) force=1 ;;
	--from-shared)
		[ $# -ge 2 ] || die "--from-shared needs a directory"
		shared="$2"
		shift
		;;
	--from-shared=*) shared="${1#*=}" ;;
	--jobs)
		[ $# -ge 2 ] || die "--jobs needs a number"
		jobs="$2"
		shift
		;;
	--jobs=*) jobs="${1#*=}" ;;
	-h | --help)
		usage
		exit 0
		;;
	*) die "unknown argument: $1 (see --help)" ;;
	esac
	shift
done

case "$jobs" in
'' | *[!0-9]* | 0) die "--jobs wants a positive number, got '$jobs'" ;;
esac
[ -f "$fragment_src" ] || die "missing $fragment_src"
patches=("$patch_dir"/*.patch)
[ -f "${patches[0]}" ] || die "no patches in $patch_dir"

outputs=("$out/vmlinux" "$out/bzImage" "$out/config")

# up_to_date succeeds when every output exists and is newer than the config
# fragment and the patches.
up_to_date() {
	local o i
	for o in "${outputs[@]}"; do
		[ -s "$o" ] || return 1
		for i in "$fragment_src" "${patches[@]}"; do
			[ "$o" -nt "$i" ] || return 1
		done
	done
}

# install_file copies $1 to $2 through a temporary file so that a reader never
# sees a half-written output; the copy gets a fresh modification time.
install_file() {
	cp "$1" "$2.tmp.$$"
	chmod u+w,go+r "$2.tmp.$$"
	mv -f "$2.tmp.$$" "$2"
}

# has_pvh_note succeeds when the ELF file $1 carries the Xen PVH entry note
# (XEN_ELFNOTE_PHYS32_ENTRY, type 18).
has_pvh_note() {
	readelf -n "$1" 2>/dev/null | awk '
		$1 == "Xen" && ($0 ~ /0x00000012/ || $0 ~ /PHYS32_ENTRY/) { found = 1 }
		END { exit !found }'
}

mkdir -p "$out"
log="$out/build.log"

# quiet runs a command with its output in $log, showing the end of the log
# if it fails.
quiet() {
	if ! "$@" >>"$log" 2>&1; then
		tail -n 40 "$log" >&2
		die "failed: $* (full log: $log)"
	fi
}

if [ "$force" = 0 ] && up_to_date; then
	phase "up to date: $out/vmlinux (use --force to rebuild)"
	exit 0
fi

# --- prebuilt kernel from a shared directory ------------------------------
if [ -n "$shared" ]; then
	if [ ! -f "$shared/vmlinux" ] || [ ! -f "$shared/bzImage" ]; then
		phase "shared: no vmlinux and bzImage in $shared, building instead"
	elif [ -f "$shared/guest.config" ] && ! cmp -s "$shared/guest.config" "$fragment_src"; then
		phase "shared: $shared/guest.config differs from guest/guest.config, building instead"
	elif [ -d "$shared/patches" ] && ! diff -q "$shared/patches" "$patch_dir" >/dev/null; then
		phase "shared: $shared/patches differs from guest/patches, building instead"
	else
		phase "shared: copying vmlinux and bzImage from $shared"
		install_file "$shared/vmlinux" "$out/vmlinux"
		install_file "$shared/bzImage" "$out/bzImage"
		if [ -f "$shared/full.config" ]; then
			install_file "$shared/full.config" "$out/config"
		elif [ -f "$shared/config" ]; then
			install_file "$shared/config" "$out/config"
		else
			cp "$fragment_src" "$out/config"
		fi
		phase "done: $out/vmlinux"
		exit 0
	fi
fi

# --- build dependencies ---------------------------------------------------
: >"$log"
missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$status" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	phase "deps: installing ${missing[*]}"
	[ "$(id -u)" = 0 ] || die "missing packages (${missing[*]}): run as root or install them with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	quiet apt-get update -q
	quiet apt-get install -y -q "${missing[@]}"
else
	phase "deps: all installed"
fi
[ -f "$tarball" ] || die "$tarball not found after installing linux-source-6.1"

# --- source tree ----------------------------------------------------------
# The tree is reused while the tarball and the patches are the ones it was
# made from; otherwise it is unpacked afresh and patched.
stamp=$( {
	stat -c '%n %s %Y' "$tarball"
	cat "${patches[@]}"
} | sha256sum | cut -d' ' -f1)
src="$work/$tree_name"
if [ -d "$src" ] && [ "$(cat "$work/stamp" 2>/dev/null)" = "$stamp" ]; then
	phase "source: reusing $src"
else
	phase "source: unpacking $tarball"
	rm -rf "$work"
	mkdir -p "$work"
	quiet tar -xJf "$tarball" -C "$work"
	[ -d "$src" ] || die "$tarball did not unpack to $tree_name/"
	for p in "${patches[@]}"; do
		phase "patch: $(basename "$p")"
		quiet patch -p1 -d "$src" -i "$p"
	done
	echo "$stamp" >"$work/stamp"
fi

# --- configuration --------------------------------------------------------
fragment="$work/guest.config"
cp "$fragment_src" "$fragment"
if ! grep -q '^CONFIG_KERNEL_LZ4=y' "$fragment"; then
	echo 'CONFIG_KERNEL_LZ4=y' >>"$fragment"
fi
phase "config: tinyconfig + guest.config"
quiet make -C "$src" tinyconfig
quiet env -C "$src" scripts/kconfig/merge_config.sh -m .config "$fragment"
quiet make -C "$src" olddefconfig
grep -q '^CONFIG_KERNEL_LZ4=y' "$src/.config" || die "CONFIG_KERNEL_LZ4=y did not survive olddefconfig"

# Report fragment options that Kconfig overrode (dependencies not met, etc.).
drift=0
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=*) opt="${line%%=*}" ;;
	'# CONFIG_'*' is not set') opt="${line#\# }" opt="${opt%% *}" ;;
	*) continue ;;
	esac
	got=$(grep -E "^($opt=|# $opt is not set)" "$src/.config" || true)
	if [ "$got" != "$line" ] && ! { [ -z "$got" ] && [ "${line#\# }" != "$line" ]; }; then
		printf '    note: asked "%s", got "%s"\n' "$line" "${got:-(absent)}"
		drift=$((drift + 1))
	fi
done <"$fragment"
[ "$drift" = 0 ] || phase "config: $drift option(s) differ from guest.config (see notes above)"

# --- build ----------------------------------------------------------------
phase "build: make -j$jobs vmlinux bzImage (a few minutes)"
quiet make -C "$src" -j"$jobs" vmlinux bzImage

phase "verify: PVH note in vmlinux"
has_pvh_note "$src/vmlinux" || die "vmlinux has no PVH entry note (is CONFIG_PVH=y?)"

phase "install: $out"
install_file "$src/arch/x86/boot/bzImage" "$out/bzImage"
install_file "$src/.config" "$out/config"
install_file "$src/vmlinux" "$out/vmlinux"
phase "done: $out/vmlinux ($(make -s -C "$src" kernelrelease))"
