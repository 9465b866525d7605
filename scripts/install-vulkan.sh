#!/usr/bin/env bash
# Installs a software Vulkan driver (Mesa's lavapipe) so onnxruntime's WebGPU execution provider
# can run on a machine without a GPU (CI, headless dev boxes). Debian bookworm only, run as root.
#
# bookworm's own mesa-vulkan-drivers (22.3) makes WebGPU report "No supported adapters"; the
# 25.x build from bookworm-backports works. So this script:
#   1. adds an apt source for bookworm-backports (same mirror as the existing bookworm source),
#   2. installs libvulkan1 and vulkan-tools from bookworm, mesa-vulkan-drivers from backports,
#   3. checks that vulkaninfo sees a device.
# Idempotent: when everything is already there it says so and exits 0. Any failure exits non-zero
# with a message starting "install-vulkan: error:".
#
# Processes using the driver should have XDG_RUNTIME_DIR set to a writable directory (Mesa warns
# otherwise); the test suite sets it when it is missing.
set -euo pipefail

log() { echo "install-vulkan: $*"; }
die() { echo "install-vulkan: error: $*" >&2; exit 1; }

MIN_MESA=23 # bookworm's 22.3 has no usable lavapipe for WebGPU
BACKPORTS_SOURCE=/etc/apt/sources.list.d/bookworm-backports.sources
export DEBIAN_FRONTEND=noninteractive

installed_version() { dpkg-query -W -f='${db:Status-Abbrev} ${Version}\n' "$1" 2>/dev/null | awk '$1 == "ii" { print $2 }'; }

# A Vulkan device as vulkaninfo reports it ("llvmpipe (LLVM ...)"), or nothing.
vulkan_device() {
  local dir
  dir=$(mktemp -d)
  XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$dir}" vulkaninfo --summary 2>/dev/null | awk -F'= ' '/deviceName/ { print $2; exit }' || true
  rmdir "$dir" 2>/dev/null || true
}

already_installed() {
  local mesa
  mesa=$(installed_version mesa-vulkan-drivers)
  [[ -n "$(installed_version libvulkan1)" && -n "$(installed_version vulkan-tools)" && -n "$mesa" ]] || return 1
  dpkg --compare-versions "$mesa" ge "$MIN_MESA" || return 1
  [[ -n "$(vulkan_device)" ]]
}

report() {
  log "libvulkan1 $(installed_version libvulkan1), vulkan-tools $(installed_version vulkan-tools), mesa-vulkan-drivers $(installed_version mesa-vulkan-drivers)"
  log "Vulkan device: $(vulkan_device)"
}

# ---------------------------------------------------------------- checks

[[ "$(id -u)" == 0 ]] || die "must run as root (it adds an apt source and installs packages)"
[[ -r /etc/os-release ]] || die "/etc/os-release is missing; this script supports Debian bookworm only"
# shellcheck disable=SC1091
codename=$(. /etc/os-release && echo "${ID:-}:${VERSION_CODENAME:-}")
[[ "$codename" == "debian:bookworm" ]] || die "this script supports Debian bookworm only (found ${codename})"
command -v apt-get >/dev/null || die "apt-get not found"

if already_installed; then
  log "already installed, nothing to do"
  report
  exit 0
fi

# ---------------------------------------------------------------- apt source for bookworm-backports

# Prints "URI<TAB>SIGNED_BY" of the first enabled source serving suite bookworm (deb822 *.sources
# or one-line *.list files, the ones apt reads).
bookworm_mirror() {
  local files=()
  [[ -f /etc/apt/sources.list ]] && files+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do [[ -f "$f" ]] && files+=("$f"); done
  for f in "${files[@]}"; do
    case "$f" in
      *.sources)
        # One deb822 stanza per blank-line-separated block.
        awk '
          function flush() {
            if (types ~ /(^| )deb( |$)/ && suites ~ /(^| )bookworm( |$)/ && enabled != "no" && uri != "") print uri "\t" signed
            types = ""; suites = ""; uri = ""; signed = ""; enabled = ""
          }
          /^[[:space:]]*#/ { next }
          /^[[:space:]]*$/ { flush(); next }
          {
            key = tolower($1); sub(/:$/, "", key); val = $0; sub(/^[^:]*:[[:space:]]*/, "", val)
            if (key == "types") types = val
            else if (key == "suites") suites = val
            else if (key == "uris") { split(val, u, /[[:space:]]+/); uri = u[1] }
            else if (key == "signed-by") signed = val
            else if (key == "enabled") enabled = tolower(val)
          }
          END { flush() }' "$f"
        ;;
      *)
        # deb [options] URI suite components...
        awk '
          $1 != "deb" { next }
          {
            i = 2; signed = ""
            if ($2 ~ /^\[/) {
              while (i <= NF) { if ($i ~ /^signed-by=/) { signed = $i; sub(/^signed-by=/, "", signed); sub(/\]$/, "", signed) } if ($i ~ /\]$/) { i++; break } i++ }
            }
            if ($(i + 1) == "bookworm") print $i "\t" signed
          }' "$f"
        ;;
    esac
  done | head -n 1
}

has_backports_source() {
  grep -rqsE '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null
}

if has_backports_source; then
  log "an apt source for bookworm-backports is already configured"
else
  mirror=$(bookworm_mirror)
  [[ -n "$mirror" ]] || die "found no apt source for suite 'bookworm' in /etc/apt/sources.list*; cannot derive the mirror for bookworm-backports"
  uri=${mirror%%$'\t'*}
  signed=${mirror#*$'\t'}
  {
    echo "Types: deb"
    echo "URIs: ${uri}"
    echo "Suites: bookworm-backports"
    echo "Components: main"
    [[ -n "$signed" ]] && echo "Signed-By: ${signed}"
  } >"$BACKPORTS_SOURCE"
  log "added ${BACKPORTS_SOURCE} (mirror ${uri})"
fi

# ---------------------------------------------------------------- packages

log "apt-get update"
apt-get update -q || die "apt-get update failed"
log "installing libvulkan1 vulkan-tools"
apt-get install -y -q --no-install-recommends libvulkan1 vulkan-tools || die "could not install libvulkan1 vulkan-tools"
log "installing mesa-vulkan-drivers from bookworm-backports"
apt-get install -y -q --no-install-recommends -t bookworm-backports mesa-vulkan-drivers || die "could not install mesa-vulkan-drivers from bookworm-backports"

mesa=$(installed_version mesa-vulkan-drivers)
dpkg --compare-versions "${mesa:-0}" ge "$MIN_MESA" || die "mesa-vulkan-drivers ${mesa:-(none)} is installed, but WebGPU needs ${MIN_MESA} or newer (from bookworm-backports)"
[[ -n "$(vulkan_device)" ]] || die "the packages are installed but vulkaninfo finds no Vulkan device"
log "done"
report
