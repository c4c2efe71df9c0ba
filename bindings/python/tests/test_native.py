"""apixo._native mirrors include/apixo.h one to one; the library is found as documented."""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
from ctypes import (POINTER, c_char_p, c_double, c_int, c_int64, c_long, c_size_t, c_uint64,
                    c_void_p)
from pathlib import Path

import pytest

from apixo import _native as N

HERE = Path(__file__).resolve().parent
PKG_ROOT = HERE.parent
HEADER = PKG_ROOT.parent.parent / "include" / "apixo.h"


def _strip(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r"^\s*#[^\n]*", " ", text, flags=re.M)
    text = text.replace('extern "C" {', " ")
    return text


def parse_header():
    """-> (functions {name: (ret, [param types])}, callbacks {name: (ret, [types])})."""
    text = _strip(HEADER.read_text())
    functions, callbacks = {}, {}
    for stmt in text.split(";"):
        stmt = " ".join(stmt.split())
        stmt = stmt.rsplit("}", 1)[-1].strip()
        m = re.fullmatch(r"typedef (.+?)\(\s*\*\s*(\w+)\s*\)\s*\((.*)\)", stmt)
        if m:
            callbacks[m.group(2)] = (m.group(1).strip(), _params(m.group(3)))
            continue
        if stmt.startswith("typedef") or "(" not in stmt:
            continue
        m = re.fullmatch(r"(.+?)\b(apixo_\w+)\s*\((.*)\)", stmt)
        assert m, f"cannot parse header declaration: {stmt!r}"
        functions[m.group(2)] = (m.group(1).strip(), _params(m.group(3)))
    return functions, callbacks


def _params(text: str):
    text = text.strip()
    if text in ("", "void"):
        return []
    out = []
    for param in text.split(","):
        param = param.strip()
        # drop the parameter name: the last identifier not followed by anything
        m = re.fullmatch(r"(.*?[\s*])(\w+)", param)
        assert m, param
        out.append(m.group(1).strip())
    return out


def ctype_for(c_type: str):
    t = " ".join(c_type.replace("*", " * ").split())
    t = re.sub(r"\bconst\b ?", "", t).strip()
    stars = t.count("*")
    base = t.replace("*", "").strip()
    scalars = {"int": c_int, "long": c_long, "double": c_double, "int64_t": c_int64,
               "size_t": c_size_t, "uint64_t": c_uint64, "apixo_code": c_int, "apixo_state": c_int,
               "apixo_delivery": c_int, "apixo_event_kind": c_int}
    if base == "void":
        if stars == 0:
            return None
        typ, stars = c_void_p, stars - 1
    elif base == "char":
        assert stars >= 1, c_type
        typ, stars = c_char_p, stars - 1
    elif base in scalars:
        typ = scalars[base]
    elif base in ("apixo_log_fn", "apixo_task_callback"):
        typ = getattr(N, base)
    elif base in ("apixo_options", "apixo_client", "apixo_request", "apixo_task", "apixo_event"):
        assert stars >= 1, f"opaque {base} by value"
        typ, stars = POINTER(getattr(N, base)), stars - 1
    else:
        raise AssertionError(f"no ctypes mapping for C type {c_type!r}")
    for _ in range(stars):
        typ = POINTER(typ)
    return typ


def test_header_parses_to_the_contract_size():
    functions, callbacks = parse_header()
    assert len(functions) >= 60
    assert set(callbacks) == {"apixo_log_fn", "apixo_task_callback"}


def test_every_header_function_is_mirrored_with_the_same_types():
    functions, _ = parse_header()
    problems = []
    for name, (ret, params) in sorted(functions.items()):
        if name not in N.FUNCTIONS:
            problems.append(f"{name}: missing from _native.py")
            continue
        restype, argtypes, _proto = N.FUNCTIONS[name]
        want_ret = ctype_for(ret)
        want_args = [ctype_for(p) for p in params]
        if restype is not want_ret:
            problems.append(f"{name}: restype {restype} but header says {ret!r} ({want_ret})")
        if list(argtypes) != want_args:
            problems.append(f"{name}: argtypes {argtypes} but header says {params} ({want_args})")
        fn = getattr(N.lib, name)
        if fn.restype is not want_ret or list(fn.argtypes) != want_args:
            problems.append(f"{name}: the loaded function is declared differently")
    extra = set(N.FUNCTIONS) - set(functions)
    if extra:
        problems.append(f"declared in _native.py but not in the header: {sorted(extra)}")
    assert not problems, "\n".join(problems)


def test_prototype_comments_match_the_header():
    functions, _ = parse_header()
    for name, (_r, _a, proto) in N.FUNCTIONS.items():
        norm = lambda s: re.sub(r"\s*\*\s*", "*", " ".join(s.split())).rstrip(";")
        ret, params = functions[name]
        assert norm(proto).startswith(norm(ret)), (name, proto)
        assert name in proto


def test_callback_types_match_the_header():
    _, callbacks = parse_header()
    for name, (ret, params) in callbacks.items():
        fnty = getattr(N, name)
        assert fnty._restype_ is ctype_for(ret), name
        assert list(fnty._argtypes_) == [ctype_for(p) for p in params], name


def test_constants_match_the_header():
    text = HEADER.read_text()
    found = 0
    for name, value in re.findall(r"\b(APIXO_[A-Z_0-9]+)\s*=\s*(0x[0-9a-fA-F]+|\d+)\b", text):
        assert getattr(N, name) == int(value, 0), name
        found += 1
    for name, value in re.findall(r"#define (APIXO_[A-Z_]+) (\S+)", text):
        expected = value.strip('"') if value.startswith('"') else int(value)
        assert getattr(N, name) == expected, name
        found += 1
    assert found >= 18 + 4 + 4 + 4
    # enum apixo_state is implicit-or-explicit 0..3 in declaration order
    assert [N.APIXO_STATE_PENDING, N.APIXO_STATE_PROCESSING, N.APIXO_STATE_SUCCESS,
            N.APIXO_STATE_FAILED] == [0, 1, 2, 3]


def test_uses_cdll_not_pydll():
    # CDLL releases the GIL around every foreign call; PyDLL would not
    assert type(N.lib) is ctypes.CDLL


def _run(code: str, env: dict, cwd: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_bad_apixo_library_names_the_path_and_the_build_command(tmp_path):
    env = dict(os.environ, APIXO_LIBRARY=str(tmp_path / "nope" / "libapixo.so"),
               PYTHONPATH=str(PKG_ROOT))
    r = _run("import apixo", env, str(tmp_path))
    assert r.returncode != 0
    assert "ImportError" in r.stderr
    assert str(tmp_path / "nope" / "libapixo.so") in r.stderr
    assert "make" in r.stderr


def test_package_copy_is_used_without_apixo_library(tmp_path):
    pkg = tmp_path / "apixo"
    shutil.copytree(PKG_ROOT / "apixo", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(N.LIBRARY_PATH, pkg / "libapixo.so")
    env = {k: v for k, v in os.environ.items() if k != "APIXO_LIBRARY"}
    env["PYTHONPATH"] = str(tmp_path)
    r = _run("import apixo._native as n; print(n.LIBRARY_PATH)", env, str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(pkg / "libapixo.so")


def test_version_matches_the_header():
    assert N.apixo_version().decode() == N.APIXO_VERSION_STRING
