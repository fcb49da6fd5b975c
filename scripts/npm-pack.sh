#!/usr/bin/env bash
# npm-pack.sh LIBDIR OUT: `make npm-pack`, the Node.js packages, as tarballs in OUT:
#   mm-session-VERSION.tgz                     the JavaScript and its types (bindings/node),
#                                              with the platform package as optional dependency
#   mm-session-linux-x64-gnu-VERSION.tgz       @mm-session/linux-x64-gnu: the library for
#                                              Linux x64 with glibc (os/cpu/libc select it)
# The library is LIBDIR's (`make portable-lib`, built for a baseline CPU): every .so file of
# it, under its own name, links copied as the file they point to (npm keeps no links), so
# that files the library loads from its own folder travel with it.
#
# The pattern is node-llama-cpp's and koffi's: one package of JavaScript, one prebuilt package
# per platform in its optionalDependencies, each of which npm installs only where its
# os/cpu/libc match. PLATFORMS lists the platform packages made, and the main package's
# optionalDependencies follow it; all take LIBDIR's library, as this machine builds one. A
# distributor who adds platforms or GPU backends (bindings/node/README.md) gives each entry
# the folder of its own build.
#
# Usage: VERSION=x.y.z scripts/npm-pack.sh LIBDIR OUT
set -euo pipefail

libdir=$1
out=$2
node_dir=bindings/node
scope=@mm-session
# platform package suffix, os, cpu, libc ("" where npm should not look at it)
PLATFORMS=("linux-x64-gnu linux x64 glibc")

version=$(node -p "require('./$node_dir/package.json').version")
if [[ -n "${VERSION:-}" && "$VERSION" != "$version" ]]; then
  echo "npm-pack: $node_dir/package.json says $version, the library (Cargo.toml) $VERSION" >&2
  exit 1
fi
shopt -s nullglob
libs=("$libdir"/*.so "$libdir"/*.so.*)
if [[ ${#libs[@]} -eq 0 || ! -e "$libdir/libmm_session.so" ]]; then
  echo "npm-pack: no libmm_session.so in $libdir (make portable-lib)" >&2
  exit 1
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$out"
out=$(cd "$out" && pwd)

optional="{}"
for platform in "${PLATFORMS[@]}"; do
  read -r suffix os cpu libc <<<"$platform"
  name="$scope/$suffix"
  dir="$stage/$suffix"
  mkdir -p "$dir"
  for lib in "${libs[@]}"; do cp -L "$lib" "$dir/$(basename "$lib")"; done
  files=$(cd "$dir" && ls | node -e "console.log(JSON.stringify(require('fs').readFileSync(0, 'utf8').split('\n').filter(Boolean)))")
  cat >"$dir/index.js" <<JS
'use strict';
// The prebuilt libmm_session of $name: mm-session's finder (lib/find.js) loads \`file\`.
const path = require('node:path');
module.exports = { file: path.join(__dirname, 'libmm_session.so'), dir: __dirname };
JS
  cat >"$dir/README.md" <<MD
# $name

The prebuilt libmm_session $version for $os $cpu${libc:+ ($libc)}, built for a baseline CPU
(x86-64-v3), for the [mm-session](https://www.npmjs.com/package/mm-session) package, which
lists it as an optional dependency: npm installs it only on a matching machine. Install
mm-session rather than this package.
MD
  NAME="$name" VERSION="$version" OS="$os" CPU="$cpu" LIBC="$libc" FILES="$files" node -e '
    const e = process.env;
    const pkg = {
      name: e.NAME, version: e.VERSION,
      description: `Prebuilt libmm_session for mm-session on ${e.OS} ${e.CPU}${e.LIBC ? ` (${e.LIBC})` : ""}`,
      license: "MIT", main: "./index.js",
      files: ["index.js", ...JSON.parse(e.FILES)],
      os: [e.OS], cpu: [e.CPU], ...(e.LIBC ? { libc: [e.LIBC] } : {}),
    };
    require("fs").writeFileSync(process.argv[1], JSON.stringify(pkg, null, 2) + "\n");
  ' "$dir/package.json"
  (cd "$dir" && npm pack --silent --pack-destination "$out" >/dev/null)
  optional=$(NAME="$name" VERSION="$version" node -p "JSON.stringify({ ...$optional, [process.env.NAME]: process.env.VERSION })")
done

# The JavaScript package: the files package.json lists (never a bundled native/ copy), its
# scripts and devDependencies dropped (they serve the repository), the platform packages added
# at this very version.
main="$stage/mm-session"
mkdir -p "$main"
cp -r "$node_dir"/{index.js,index.mjs,index.d.ts,lib,README.md,package.json} "$main/"
OPTIONAL="$optional" node -e '
  const fs = require("fs");
  const pkg = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
  delete pkg.scripts;
  delete pkg.devDependencies;
  pkg.files = pkg.files.filter((f) => !f.startsWith("native"));
  pkg.optionalDependencies = JSON.parse(process.env.OPTIONAL);
  fs.writeFileSync(process.argv[1], JSON.stringify(pkg, null, 2) + "\n");
' "$main/package.json"
(cd "$main" && npm pack --silent --pack-destination "$out" >/dev/null)

for platform in "${PLATFORMS[@]}"; do
  read -r suffix _ <<<"$platform"
  echo "$out/mm-session-$suffix-$version.tgz ($scope/$suffix)" >&2
done
echo "$out/mm-session-$version.tgz (mm-session)" >&2
