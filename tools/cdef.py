#!/usr/bin/env python3
"""Writes a directive-free copy of include/apixo.h for FFIs that parse C declarations
themselves (Python cffi's ffi.cdef, LuaJIT's ffi.cdef, ...).

    python3 tools/cdef.py include/apixo.h build/include/apixo_cdef.h

The copy has no comments and no preprocessor lines: #include, the include guard and the
`extern "C"` block are dropped; the integer macros (APIXO_LOG_*, APIXO_VERSION_MAJOR/MINOR/
PATCH) become members of anonymous enums, which both cdefs accept; the one string macro,
APIXO_VERSION_STRING, is dropped (apixo_version() returns it). size_t, int64_t and uint64_t
are known to both FFIs without <stddef.h> / <stdint.h>. Tests/abi/cdef_check.py feeds the
result to cffi and LuaJIT.
"""

import re
import sys


def convert(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    out, macros, skip = [], [], 0
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith("#"):
            directive = stripped[1:].split()
            name = directive[0] if directive else ""
            if name == "ifdef" and directive[1:] == ["__cplusplus"]:
                skip += 1
            elif name == "endif" and skip:
                skip -= 1
            elif name == "define" and len(directive) == 3 and re.fullmatch(r"-?\d+", directive[2]):
                macros.append("%s = %s" % (directive[1], directive[2]))
                continue
            flush(out, macros)
            continue
        if skip:
            continue
        flush(out, macros)
        out.append(line.rstrip())
    flush(out, macros)
    body = re.sub(r"\n\s*\n+", "\n\n", "\n".join(out)).strip()
    return body + "\n"


def flush(out, macros):
    """Emits the integer macros gathered so far as one anonymous enum."""
    if macros:
        out.append("enum { " + ", ".join(macros) + " };")
        macros.clear()


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: cdef.py apixo.h apixo_cdef.h\n")
        return 2
    with open(argv[1]) as f:
        result = convert(f.read())
    with open(argv[2], "w") as f:
        f.write(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
