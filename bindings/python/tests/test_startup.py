"""Start-up: `import apixo` loads the library and little else (bench/python_import.py
measures it; BENCHMARKS.md has the figures). Asserted on what is imported, not on time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from conftest import PKG_ROOT

HEAVY = ["asyncio", "logging", "typing", "threading", "json", "concurrent.futures",
         "datetime", "ctypes.util", "subprocess", "re"]


def test_import_apixo_leaves_the_heavy_modules_alone():
    code = ("import sys, apixo\n"
            f"print(__import__('json').dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    env = dict(os.environ, PYTHONPATH=str(PKG_ROOT))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    # the probe itself imports json after the fact; anything else was imported by apixo
    # (or by the interpreter's own start-up: compared against a bare interpreter)
    bare = subprocess.run([sys.executable, "-c",
                           f"import sys; print(__import__('json').dumps([m for m in {HEAVY!r} "
                           "if m in sys.modules]))"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert set(json.loads(r.stdout)) <= set(json.loads(bare.stdout)), (r.stdout, bare.stdout)


def test_the_type_aliases_are_there_at_run_time():
    import typing

    import apixo

    assert typing.get_args(apixo.OutputFormat) == ("jpeg", "png")
    assert "16:9" in typing.get_args(apixo.AspectRatio)
    assert typing.get_args(apixo.State) == ("pending", "processing", "success", "failed")
    # the run-time aliases are the ones the type checkers read (one definition each)
    source = (PKG_ROOT / "apixo" / "_types.py").read_text()
    checked = source.split("if TYPE_CHECKING:\n", 1)[1].split("\nelse:\n", 1)[0]
    scope: dict = {}
    exec(compile(textwrap.dedent(checked), "_types", "exec"), scope)
    for name in apixo._types.__all__:
        assert scope[name] == getattr(apixo, name), name
