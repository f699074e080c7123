#!/usr/bin/env bash
# Installs the VS Code server that the extension tests, the e2e test, the extension benchmark and the
# demo run: code-server@4.100.3 (VS Code 1.100.3, the newest that runs on Node 20), into
# .tools/code-server with its own package.json and lockfile, outside the project's.
# Idempotent: does nothing when that version is already installed. Needs the Debian packages
# ripgrep, libkrb5-dev, pkg-config, g++, make, python3 (./dev installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=4.100.3
DIR="$PWD/.tools/code-server"
DONE="$DIR/.installed-$VERSION"   # written last, so an interrupted install is redone

if [ -f "$DONE" ] && [ -f "$DIR/node_modules/code-server/lib/vscode/out/server-main.js" ]; then
  exit 0
fi

command -v rg >/dev/null || { echo "install-code-server: /usr/bin/rg is missing (Debian package ripgrep)" >&2; exit 1; }

echo "install-code-server: installing code-server@$VERSION into .tools/code-server (about a minute)" >&2
rm -rf "$DIR"
mkdir -p "$DIR/tmp"

# @vscode/ripgrep 1.15.11 (a dependency of VS Code) downloads a ripgrep build in its postinstall, from
# a host this machine cannot reach. Its download step looks in $TMPDIR/vscode-ripgrep-cache-1.15.11
# first, so we put a tarball there that holds Debian's rg under the name it asks for.
case "$(uname -m)" in
  x86_64) target=x86_64-unknown-linux-musl ;;
  aarch64) target=aarch64-unknown-linux-musl ;;
  *) echo "install-code-server: unsupported machine $(uname -m)" >&2; exit 1 ;;
esac
cache="$DIR/tmp/vscode-ripgrep-cache-1.15.11"
mkdir -p "$cache" "$DIR/tmp/rg"
cp "$(command -v rg)" "$DIR/tmp/rg/rg"
tar -czf "$cache/ripgrep-v13.0.0-10-$target.tar.gz" -C "$DIR/tmp/rg" rg

cat > "$DIR/package.json" <<JSON
{ "name": "strata-tools-code-server", "private": true, "description": "VS Code server for Strata's extension tests and demo (installed by scripts/install-code-server.sh)" }
JSON

# npm_config_yes: node-pty's postinstall runs "npx node-gyp", which would otherwise prompt.
# npm_config_unsafe_perm: as root, npm would otherwise run install scripts as nobody.
(cd "$DIR" && TMPDIR="$DIR/tmp" npm_config_yes=true npm_config_unsafe_perm=true \
  npm install --no-audit --no-fund --save-exact "code-server@$VERSION" >"$DIR/install.log" 2>&1) || {
  echo "install-code-server: npm install failed; the last lines of $DIR/install.log:" >&2
  tail -n 30 "$DIR/install.log" >&2
  exit 1
}

test -f "$DIR/node_modules/code-server/lib/vscode/out/server-main.js"
test -x "$DIR/node_modules/code-server/lib/vscode/node_modules/@vscode/ripgrep/bin/rg" || {
  echo "install-code-server: ripgrep did not land in VS Code's @vscode/ripgrep" >&2; exit 1; }
rm -rf "$DIR/tmp"
touch "$DONE"
echo "install-code-server: done" >&2
