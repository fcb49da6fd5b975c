#!/usr/bin/env bash
# test-release-npm.sh DIST FIXTURES_TOOL: `make test-release-npm`, the npm tarballs as a user
# installs them. In a fresh temporary folder, with no network (npm --offline, a registry that
# does not answer, an empty cache of its own), npm installs the platform tarball and the main
# one together; koffi, their one dependency, is packed from bindings/node/node_modules (koffi
# and its own platform package) and installed from those tarballs. Then, with MM_SESSION_LIB
# unset, pkg-config finding nothing and the repository out of reach, a script checks that the
# library comes from the platform package and that the pair that sees answers "red".
#
# Usage: VERSION=x.y.z scripts/test-release-npm.sh DIST FIXTURES_TOOL
set -euo pipefail

dist=$(cd "$1" && pwd)
tool=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
version=${VERSION:-$(node -p "require('./bindings/node/package.json').version")}
modules=$(pwd)/bindings/node/node_modules
main_tgz=$dist/mm-session-$version.tgz
platform_tgz=$dist/mm-session-linux-x64-gnu-$version.tgz
for f in "$main_tgz" "$platform_tgz" "$modules/koffi/package.json"; do
  [[ -e "$f" ]] || { echo "test-release-npm: $f is missing (make npm-pack node-deps)" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/mm-npm-release.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# npm with nothing of this machine's: no user config, its own empty cache, no network.
export NPM_CONFIG_USERCONFIG=$tmp/npmrc NPM_CONFIG_GLOBALCONFIG=$tmp/npmrc-global
export NPM_CONFIG_CACHE=$tmp/cache NPM_CONFIG_REGISTRY=http://127.0.0.1:9/
export NPM_CONFIG_OFFLINE=true NPM_CONFIG_AUDIT=false NPM_CONFIG_FUND=false NPM_CONFIG_UPDATE_NOTIFIER=false
: >"$tmp/npmrc"; : >"$tmp/npmrc-global"

t0=$(now)
"$tool" "$tmp/fixtures" --seeing >/dev/null
t1=$(now)
echo "fixtures (the pair that sees): $(secs "$t0" "$t1") s"

mkdir -p "$tmp/deps" "$tmp/app"
koffi_version=$(node -p "require('$modules/koffi/package.json').version")
deps=()
for pkg in "$modules/koffi" "$modules/@koromix/koffi-linux-x64"; do
  [[ -d "$pkg" ]] || continue
  deps+=("$tmp/deps/$(cd "$pkg" && npm pack --silent --ignore-scripts --pack-destination "$tmp/deps")")
done
cp "$platform_tgz" "$main_tgz" "$tmp/app/"
t2=$(now)
echo "koffi $koffi_version packed from bindings/node/node_modules: $(secs "$t1" "$t2") s (${deps[*]##*/})"

cd "$tmp/app"
echo '{ "name": "mm-release-test", "version": "1.0.0", "private": true }' >package.json
npm install --offline --no-audit --no-fund --loglevel=error "${deps[@]}" \
  "./$(basename "$platform_tgz")" "./$(basename "$main_tgz")"
t3=$(now)
echo "npm install --offline of the two tarballs: $(secs "$t2" "$t3") s"
echo "installed: $(ls node_modules node_modules/@mm-session | tr '\n' ' ')"

cat >check.js <<'JS'
'use strict';
const assert = require('node:assert/strict');
const path = require('node:path');
const { Session, library, version, buildInfo } = require('mm-session');
const [fixtures, expectedVersion] = process.argv.slice(2);
const platformDir = path.join(__dirname, 'node_modules', '@mm-session', 'linux-x64-gnu');
console.log(`library: ${library.source} ${library.file} (version ${version()})`);
assert.equal(library.source, 'platform-package');
assert.equal(library.file, path.join(platformDir, 'libmm_session.so'));
assert.equal(version(), expectedVersion);
console.log(`build: ${buildInfo()}`);
// MM_SESSION_CPU picks the copy of a lower CPU level; it must answer the same.
if (process.env.MM_SESSION_CPU) assert.match(buildInfo(), new RegExp(`target-cpu: x86-64-${process.env.MM_SESSION_CPU};`));
(async () => {
  const t = performance.now();
  const s = await Session.create({ model: path.join(fixtures, 'seeing-llama.gguf'), mmproj: path.join(fixtures, 'seeing-mmproj.gguf'), nThreads: 2, nCtx: 1024 });
  try {
    const answer = await s.ask({ prompt: 'What colour is this picture?', media: [path.join(fixtures, 'seeing-red.png')], temperature: 0 });
    console.log(`answer: ${JSON.stringify(answer)} (${((performance.now() - t) / 1000).toFixed(1)} s to load and ask)`);
    assert.equal(answer, 'red');
  } finally {
    await s.close();
  }
})().catch((e) => { console.error(e); process.exit(1); });
JS
env -u MM_SESSION_LIB PKG_CONFIG_PATH= PKG_CONFIG_LIBDIR=/nonexistent \
  node check.js "$tmp/fixtures" "$version"
env -u MM_SESSION_LIB PKG_CONFIG_PATH= PKG_CONFIG_LIBDIR=/nonexistent MM_SESSION_CPU=v2 \
  node check.js "$tmp/fixtures" "$version"
t4=$(now)
echo "check: $(secs "$t3" "$t4") s"

# Without the platform package (npm skips an optional dependency it cannot get), the error
# names it.
mkdir -p "$tmp/alone" && cd "$tmp/alone"
echo '{ "name": "mm-release-test-alone", "version": "1.0.0", "private": true }' >package.json
npm install --offline --no-audit --no-fund --loglevel=error "${deps[@]}" "$main_tgz" >/dev/null
error=$(env -u MM_SESSION_LIB PKG_CONFIG_PATH= PKG_CONFIG_LIBDIR=/nonexistent \
  node -e "try { require('mm-session'); console.log('loaded') } catch (e) { console.log(e.message) }")
echo "without the platform tarball: $(grep -o '^The platform package.*' <<<"$error" || echo "$error")"
grep -q 'The platform package @mm-session/linux-x64-gnu (an optional dependency) is not installed' <<<"$error"
t5=$(now)
echo "check without the platform package: $(secs "$t4" "$t5") s"
t4=$t5
echo "test-release-npm: passed (total $(secs "$t0" "$t4") s)"
