#!/usr/bin/env bash
# The fork fix of Sources/CApixoFork/fork.c against the Swift runtime's once-lock, shown on a
# small program linked like libapixo.so (-static-stdlib): built without fork.c its child
# livelocks (reported, not failed: that is the runtime's behaviour), built with it the child
# finishes (failed otherwise). Prints "N passed, N failed".
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$(dirname "$here")")"
swiftc="${SWIFTC:-$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
cc -c -O2 -fPIC -I"$root/Sources/CApixoFork/include" "$root/Sources/CApixoFork/fork.c" -o "$out/fork.o"
"$swiftc" -O -static-stdlib "$here/globals.swift" "$here/main.swift" -o "$out/plain" 2>/dev/null
"$swiftc" -O -static-stdlib "$here/globals.swift" "$here/main.swift" "$out/fork.o" -o "$out/fixed" 2>/dev/null
echo "without fork.c: $("$out/plain")"
echo "with fork.c:    $("$out/fixed")"
if "$out/fixed" >/dev/null; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; exit 1; fi
