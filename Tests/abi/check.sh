#!/usr/bin/env bash
# The shipped library's shape: no Swift runtime needed, only apixo_* exported, every header
# function exported and nothing more, version macros equal to apixo_version(), and an
# installed copy usable through pkg-config without LD_LIBRARY_PATH.
set -euo pipefail
cd "$(dirname "$0")/../.."
LIB=build/lib/libapixo.so
pass=0; fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }

if readelf -d "$LIB" | grep NEEDED | grep -qi swift; then bad "libapixo.so needs a Swift runtime library"; else ok "no libswift* in NEEDED"; fi
needed=$(readelf -d "$LIB" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
ok "NEEDED: $needed"
others=$(nm -D --defined-only "$LIB" | awk '{print $3}' | grep -v '^apixo_' | grep -vx 'APIXO_0' || true)
if [ -z "$others" ]; then ok "nm -D --defined-only shows apixo_* only"; else bad "exports beyond apixo_*: $others"; fi

exported=$(nm -D --defined-only "$LIB" | awk '{print $3}' | sed 's/@.*//' | sort)
declared=$(grep -oE '\bapixo_[a-z_0-9]+\(' include/apixo.h | tr -d '(' | sort -u | \
           grep -vxE 'apixo_(log_fn|task_callback)' || true)
missing=$(comm -13 <(echo "$exported") <(echo "$declared"))
extra=$(comm -23 <(echo "$exported") <(echo "$declared"))
[ -z "$missing" ] && ok "every header function is exported" || bad "declared, not exported: $missing"
[ -z "$extra" ] && ok "every export is declared in the header" || bad "exported, not declared: $extra"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
make -s install PREFIX="$tmp/prefix" >/dev/null
cat > "$tmp/app.c" <<'C'
#include <apixo.h>
#include <stdio.h>
#include <string.h>
int main(void) {
  char want[32];
  snprintf(want, sizeof want, "%d.%d.%d", APIXO_VERSION_MAJOR, APIXO_VERSION_MINOR, APIXO_VERSION_PATCH);
  if (strcmp(want, apixo_version()) || strcmp(APIXO_VERSION_STRING, apixo_version())) return 1;
  puts(apixo_version());
  return 0;
}
C
flags=$(PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig" pkg-config --cflags --libs apixo)
if cc -std=c99 -Wall -Werror "$tmp/app.c" $flags -o "$tmp/app"; then ok "cc app.c \$(pkg-config --cflags --libs apixo) links"; else bad "link through pkg-config"; fi
if out=$(env -u LD_LIBRARY_PATH "$tmp/app"); then ok "installed app runs without LD_LIBRARY_PATH, apixo_version() = $out = macros"; else bad "installed app did not run"; fi
# ldd's output read whole first: `ldd | grep -q` fails under pipefail when grep stops early.
resolved=$(ldd "$tmp/app")
if grep -q "$tmp/prefix/lib/libapixo.so.0" <<<"$resolved"; then ok "resolves the installed libapixo.so.0"; else bad "resolved another libapixo: $(grep apixo <<<"$resolved")"; fi
[ -x "$tmp/prefix/bin/apixo" ] && ok "installs bin/apixo" || bad "bin/apixo not installed"
[ -f "$tmp/prefix/include/apixo.h" ] && ok "installs include/apixo.h" || bad "header not installed"
[ -f "$tmp/prefix/include/apixo_cdef.h" ] && ok "installs include/apixo_cdef.h" || bad "apixo_cdef.h not installed"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
