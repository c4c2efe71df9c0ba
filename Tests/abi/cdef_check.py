#!/usr/bin/env python3
"""build/include/apixo_cdef.h is accepted as is by cffi's ffi.cdef and LuaJIT's ffi.cdef, and
describes the library: every function of include/apixo.h is there, the constants have the
header's values, the enums are 32 bits, and apixo_version() called through each FFI equals
APIXO_VERSION_STRING.

    python3 Tests/abi/cdef_check.py [build]
"""

import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build")
CDEF = os.path.join(BUILD, "include", "apixo_cdef.h")
LIB = os.path.join(BUILD, "lib", "libapixo.so")
HEADER = os.path.join(ROOT, "include", "apixo.h")

passed = failed = 0


def check(ok, what):
    global passed, failed
    print(("ok   " if ok else "FAIL ") + what)
    if ok:
        passed += 1
    else:
        failed += 1


header = open(HEADER).read()
cdef = open(CDEF).read()
version = re.search(r'#define APIXO_VERSION_STRING "([^"]+)"', header).group(1)
functions = sorted(set(re.findall(r"\b(apixo_[a-z_0-9]+)\s*\(", header)) - {"apixo_log_fn", "apixo_task_callback"})
constants = {name: int(value, 0) for name, value in
             re.findall(r"\b(APIXO_[A-Z_0-9]+)\s*=\s*(0x[0-9a-fA-F]+|\d+)\b", header)}
constants.update({name: int(value) for name, value in
                  re.findall(r"#define (APIXO_[A-Z_0-9]+) (\d+)\s*$", header, flags=re.M)})

check("#" not in cdef, "no preprocessor line")
check("/*" not in cdef and "//" not in cdef, "no comment")
missing = [f for f in functions if not re.search(r"\b%s\s*\(" % f, cdef)]
check(not missing and len(functions) >= 70, "all %d header functions declared%s" % (
    len(functions), ": missing " + ", ".join(missing) if missing else ""))

# cffi
try:
    import cffi
except ImportError:
    cffi = None
check(cffi is not None, "cffi is installed (pip install cffi)")
if cffi is not None:
    ffi = cffi.FFI()
    try:
        ffi.cdef(cdef)
        check(True, "cffi %s: ffi.cdef accepts it" % cffi.__version__)
        lib = ffi.dlopen(LIB)
        got = ffi.string(lib.apixo_version()).decode()
        check(got == version, "cffi: apixo_version() = %s" % got)
        wrong = [n for n, v in constants.items() if getattr(lib, n) != v]
        check(not wrong, "cffi: %d constants equal the header's%s" % (len(constants), " except " + str(wrong) if wrong else ""))
        sizes = {t: ffi.sizeof(t) for t in ("apixo_code", "apixo_state", "apixo_delivery", "apixo_event_kind")}
        check(set(sizes.values()) == {4}, "cffi: enums are 32 bits %s" % sizes)
        check(ffi.string(lib.apixo_code_name(lib.APIXO_ERR_INDETERMINATE)).decode() == "APIXO_ERR_INDETERMINATE",
              "cffi: apixo_code_name(APIXO_ERR_INDETERMINATE)")
    except Exception as e:  # a cdef error is the failure this test exists for
        check(False, "cffi: %s: %s" % (type(e).__name__, e))

# LuaJIT
luajit = shutil.which("luajit")
check(luajit is not None, "luajit is installed")
if luajit:
    script = r"""
local ffi = require("ffi")
local path, lib, version = ...
local f = assert(io.open(path)); local text = f:read("*a"); f:close()
ffi.cdef(text)
local C = ffi.load(lib)
assert(ffi.string(C.apixo_version()) == version, "apixo_version() = " .. ffi.string(C.apixo_version()))
for _, t in ipairs({"apixo_code", "apixo_state", "apixo_delivery", "apixo_event_kind"}) do
  assert(ffi.sizeof(t) == 4, t .. " is not 32 bits")
end
local wanted = {%s}
local n = 0
for name, value in pairs(wanted) do
  assert(C[name] == value, name .. " = " .. tostring(C[name]) .. ", header " .. value); n = n + 1
end
print("luajit: ffi.cdef accepts it; apixo_version() = " .. version .. "; " .. n .. " constants equal")
""" % ", ".join("%s = %d" % (n, v) for n, v in sorted(constants.items()))
    r = subprocess.run([luajit, "-", CDEF, LIB, version], input=script, capture_output=True, text=True)
    check(r.returncode == 0, r.stdout.strip() if r.returncode == 0 else "luajit: " + (r.stderr or r.stdout).strip())

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
