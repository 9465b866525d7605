#!/usr/bin/env bash
# Installs code-server (a real VS Code workbench served to a browser) into .cache/code-server/ for
# the end-to-end tests, from the npm registry only. Skips the install when that version is there.
#
# code-server's dependencies build native modules and fetch one binary from outside npm:
#   - kerberos needs Debian's libkrb5-dev; node-pty runs `npx node-gyp` (hence npm_config_yes);
#   - @vscode/ripgrep downloads rg from GitHub unless its cache already holds the tarball, so the
#     cache gets one made from Debian's ripgrep.
# Prints the code-server entry point's path on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=4.100.3
RIPGREP_PACKAGE=1.15.11  # @vscode/ripgrep, as code-server $VERSION pins it
RIPGREP_ASSET=ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz
PREFIX="$PWD/.cache/code-server/$VERSION"
ENTRY="$PREFIX/node_modules/code-server/out/node/entry.js"

log() { echo "install-code-server: $*" >&2; }

if [[ -f "$PREFIX/.installed" && -f "$ENTRY" ]]; then
  echo "$ENTRY"
  exit 0
fi

if [[ "$(node -p 'process.versions.node.split(".")[0]')" != 20 ]]; then
  log "error: code-server $VERSION needs Node 20 (found $(node --version))"
  exit 1
fi

missing=()
dpkg -s libkrb5-dev >/dev/null 2>&1 || missing+=(libkrb5-dev)
command -v rg >/dev/null || missing+=(ripgrep)
if ((${#missing[@]})); then
  log "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

ripgrep_cache="${TMPDIR:-/tmp}/vscode-ripgrep-cache-$RIPGREP_PACKAGE"
if [[ ! -f "$ripgrep_cache/$RIPGREP_ASSET" ]]; then
  mkdir -p "$ripgrep_cache"
  tar czf "$ripgrep_cache/$RIPGREP_ASSET" -C "$(dirname "$(command -v rg)")" rg
fi

log "installing code-server $VERSION into $PREFIX"
rm -rf "$PREFIX"
mkdir -p "$PREFIX"
echo '{ "private": true }' >"$PREFIX/package.json"
npm_config_yes=true npm_config_unsafe_perm=true npm_config_nodedir=/usr \
  npm install --prefix "$PREFIX" --no-audit --no-fund --no-save --loglevel=error "code-server@$VERSION" >&2
[[ -f "$ENTRY" ]] || { log "error: $ENTRY is missing after the install"; exit 1; }
touch "$PREFIX/.installed"
echo "$ENTRY"
