#!/usr/bin/env bash
# go-module.sh: `make go-module` and `make test-release-go` (bindings/go/README.md, "Getting
# the module").
#
# Usage: scripts/go-module.sh build DIST VERSION
#        scripts/go-module.sh test DIST VERSION MODEL MMPROJ IMAGE
# GO names the go command (default: go).
#
# build: the files a GOPROXY serves for the Go module in bindings/go at vVERSION, under
# DIST/goproxy/<escaped module path>/@v/: v<VERSION>.zip (every file under <module>@v<VERSION>/:
# the module's files that git tracks or would track, without vendor/ directories and nested
# modules, as `go mod download` wants them), v<VERSION>.mod (bindings/go/go.mod), v<VERSION>.info
# (the version and HEAD's commit time) and list (every version in the folder). It also writes
# DIST/go-module-v<VERSION>.sum: the two go.sum lines ("h1:" hashes of the zip and of go.mod)
# that a program requiring this version gets.
# test: a program outside this tree, as a user writes it: a fresh prefix from `make install`, a
# fresh module (go mod init, go get <module>@v<VERSION>) with GOPATH and GOMODCACHE in a temp
# folder and GOPROXY=file://DIST/goproxy only (no sum database, no VCS, no network namespace
# where `unshare -rn` works), examples/go/describe's main.go built in it against the prefix
# through pkg-config and run on the model pair. It fails unless the answer is not empty, the
# session count ends at 0, go.sum holds exactly the lines `build` wrote, and the module cache
# holds nothing but this module.
set -euo pipefail

GO=${GO:-go}
root=$(pwd)
mode=$1 dist=$2 version=v$3
module=$(sed -n 's/^module[[:space:]]\{1,\}//p' bindings/go/go.mod | tr -d '"\r')
# The module path as proxies spell it: each capital letter as "!" and the letter in lower case.
escaped=$(printf '%s' "$module" | sed 's/[A-Z]/!\L&/g')
sumfile=$dist/go-module-$version.sum

if [ "$mode" = build ]; then
    vdir=$dist/goproxy/$escaped/@v
    mkdir -p "$vdir"
    time=$(TZ=UTC git log -1 --date=format-local:%Y-%m-%dT%H:%M:%SZ --format=%cd)
    zip_py=$(cat <<'EOF'
import base64, hashlib, os, re, sys, zipfile
module, version, moddir, zip_path, sum_path = sys.argv[1:]
paths = sorted(set(p for p in sys.stdin.read().split("\0") if p))
rel = [os.path.relpath(p, moddir) for p in paths if os.path.isfile(p) and not os.path.islink(p)]
# Nested modules (a folder below with its own go.mod) and vendor/ folders are not part of it.
nested = {os.path.dirname(r) for r in rel if os.path.basename(r) == "go.mod" and os.path.dirname(r)}
def kept(r):
    parts = r.split("/")
    if "vendor" in parts[:-1] or any(p in (".git", ".hg", ".svn", ".bzr") for p in parts[:-1]):
        return False
    return not any(r == n or r.startswith(n + "/") for n in nested)
files = [r for r in rel if kept(r)]
if "go.mod" not in files:
    sys.exit("go-module: bindings/go/go.mod is missing")
# Go's rules for file paths in a module zip (golang.org/x/mod/module.CheckFilePath), ASCII part.
ok = re.compile(r"^[A-Za-z0-9\-._~+!#$%&'()*,;=@\[\]^{}/]+$")
lower = set()
for r in files:
    if not ok.match(r) or any(e in ("", ".", "..") for e in r.split("/")):
        sys.exit(f"go-module: {r}: not a valid file path in a module zip")
    if r.lower() in lower:
        sys.exit(f"go-module: {r}: another file differs only in case")
    lower.add(r.lower())
prefix = f"{module}@{version}/"
def h1(names, read):  # golang.org/x/mod/sumdb/dirhash.Hash1
    summary = "".join(f"{hashlib.sha256(read(n)).hexdigest()}  {n}\n" for n in sorted(names))
    return "h1:" + base64.b64encode(hashlib.sha256(summary.encode()).digest()).decode()
data = {r: open(os.path.join(moddir, r), "rb").read() for r in files}
tmp = zip_path + ".tmp"
with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
    for r in files:  # fixed times: the same files give the same zip
        info = zipfile.ZipInfo(prefix + r, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, data[r])
os.replace(tmp, zip_path)
zip_hash = h1([prefix + r for r in files], lambda n: data[n[len(prefix):]])
mod_hash = h1(["go.mod"], lambda n: data["go.mod"])
with open(sum_path, "w") as f:
    f.write(f"{module} {version} {zip_hash}\n{module} {version}/go.mod {mod_hash}\n")
print(f"go-module: {len(files)} files, {os.path.getsize(zip_path)} bytes")
EOF
)
    # Tracked files and new ones git does not ignore (not build outputs), as they are on disk.
    git ls-files -z --cached --others --exclude-standard -- bindings/go |
        python3 -c "$zip_py" "$module" "$version" bindings/go "$vdir/$version.zip" "$sumfile"
    cp bindings/go/go.mod "$vdir/$version.mod"
    printf '{"Version":"%s","Time":"%s"}\n' "$version" "$time" >"$vdir/$version.info"
    (cd "$vdir" && ls -- *.info | sed 's/\.info$//' | sort -V >list)
    echo "go-module: $vdir/{list,$version.info,$version.mod,$version.zip} ($module $version, $time)"
    exit 0
fi
[ "$mode" = test ] || { echo "usage: scripts/go-module.sh build|test ..." >&2; exit 2; }
model=$(realpath "$4") mmproj=$(realpath "$5") image=$(realpath "$6")
proxy=$root/$dist/goproxy
[ -f "$proxy/$escaped/@v/$version.zip" ] && [ -f "$sumfile" ] || { echo "test-release-go: run make go-module first" >&2; exit 1; }

T=$(mktemp -d)
cleanup() { chmod -R u+w "$T" 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
P=$T/prefix
"${MAKE:-make}" --no-print-directory install PREFIX="$P" >/dev/null

# Only the folder proxy: no "direct" fallback, no VCS, no sum database, no user go env file.
# Where user namespaces allow it, the go commands also run without a network.
nonet=()
if unshare -rn true 2>/dev/null; then nonet=(unshare -rn); else echo "test-release-go: unshare -rn unavailable; GOPROXY=file:// only"; fi
go_env=(GOENV=off GO111MODULE=on GOTOOLCHAIN=local GOPATH="$T/gopath" GOMODCACHE="$T/gopath/pkg/mod"
    GOPROXY="file://$proxy" GOSUMDB=off GONOSUMDB= GONOPROXY= GOPRIVATE= GOVCS='*:off' GOFLAGS=-mod=mod
    GOINSECURE= PKG_CONFIG_PATH="$P/lib/pkgconfig" CGO_LDFLAGS="-Wl,-rpath,$P/lib"
    CGO_CFLAGS="-g -O2 -DMM_SESSION_H_SHA256=$(sha256sum "$P/include/mm_session.h" | cut -c1-16)")
run_go() { env "${go_env[@]}" "${nonet[@]}" "$GO" "$@"; }

W=$T/describe
mkdir -p "$W"
cp examples/go/describe/main.go "$W/"
cd "$W"
run_go mod init example.com/describe >/dev/null 2>&1
run_go get "$module@$version"
run_go build -o describe .
grep -q "^require $module $version\$" go.mod || { echo "test-release-go: go.mod does not require $module $version:"; cat go.mod; exit 1; }
if ! diff <(sort go.sum) <(sort "$root/$sumfile"); then
    echo "test-release-go: go.sum differs from $sumfile"; exit 1
fi
fetched=$(cd "$T/gopath/pkg/mod/cache/download" && find . -name '@v' -type d | sed 's|^\./||; s|/@v$||')
[ "$fetched" = "$escaped" ] || { echo "test-release-go: the module cache holds more than $module:"; echo "$fetched"; exit 1; }

out=$(MM_THREADS=2 ./describe "$model" "$mmproj" "$image")
answer=$(echo "$out" | sed -n '/^prompt: /q;p')
[ -n "${answer//[[:space:]]/}" ] || { echo "test-release-go: empty answer"; exit 1; }
echo "test-release-go: the answer has ${#answer} characters; $(echo "$out" | grep '^prompt: ')"
echo "$out" | grep -Eq '^prompt: [0-9]+ positions, 1 media encoded, [1-9][0-9]* tokens generated' || { echo "test-release-go: no request figures"; exit 1; }
echo "$out" | tail -1 | grep -qx "live sessions: 0" || { echo "test-release-go: sessions left"; exit 1; }
cd "$root"
"${MAKE:-make}" --no-print-directory uninstall PREFIX="$P" >/dev/null
echo "test-release-go: $module $version from GOPROXY=file://$proxy, built against a fresh prefix: answered, live sessions: 0"
