"""Build hooks: put libapixo.so inside the package and tag the wheel for the platform.

``pip install ./bindings/python`` and ``pip wheel ./bindings/python`` copy the library
built by ``make`` (``../../build/lib/libapixo.so``, or the file named by
``APIXO_LIBRARY``) into the package, so the installed package needs neither the
source tree nor any build tools. When the library is not built yet and a Swift
toolchain is there, they build it first (``make lib`` at the repository root); without
one they stop with a message that says what to do. A wheel that carries the library is
tagged ``py3-none-<platform>`` (any CPython 3, no Python ABI: the library is loaded with
ctypes); ``make wheel`` then makes it a manylinux wheel with ``auditwheel repair``.
"""

import os
import shutil
import subprocess

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:  # setuptools >= 70.1 ships bdist_wheel itself
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # older setuptools: the wheel package (build_meta requires it there)
    try:
        from wheel.bdist_wheel import bdist_wheel
    except ImportError:  # neither: `setup.py build_py` still works (the tests use it)
        bdist_wheel = None

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
BUILT = os.path.join(REPO, "build", "lib", "libapixo.so")

HOW = ("build it at the repository root with `make` (needs Swift 6, e.g. in /opt/swift, and "
       "libcurl4-openssl-dev, libjansson-dev; `make deps` installs the latter), set "
       "APIXO_LIBRARY=/path/to/libapixo.so, or install a prebuilt wheel (`make wheel`)")


def library_source():
    """The libapixo.so to ship, or None."""
    env = os.environ.get("APIXO_LIBRARY")
    if env:
        if not os.path.isfile(env):
            raise SystemExit(f"apixo: APIXO_LIBRARY={env} is not a file")
        return os.path.abspath(env)
    for path in (BUILT, os.path.join(HERE, "apixo", "libapixo.so")):
        if os.path.isfile(path):
            return path
    return None


def swift_toolchain():
    if os.environ.get("SWIFT"):  # as for make: this one or none
        return os.environ["SWIFT"] if os.path.isfile(os.environ["SWIFT"]) else None
    for path in (shutil.which("swift"), "/opt/swift/usr/bin/swift"):
        if path and os.path.isfile(path):
            return path
    return None


def build_library():
    """``make lib`` at the repository root, when this is a checkout and Swift is there."""
    if not os.path.isfile(os.path.join(REPO, "Makefile")) or not os.path.isdir(
            os.path.join(REPO, "Sources")):
        raise SystemExit("apixo: libapixo.so is not part of this source tree; " + HOW)
    swift = swift_toolchain()
    if swift is None:
        raise SystemExit("apixo: libapixo.so is not built and no Swift toolchain was found "
                         "(swift on PATH or /opt/swift/usr/bin/swift); " + HOW)
    print(f"apixo: building libapixo.so with `make lib` in {REPO} ({swift})", flush=True)
    r = subprocess.run(["make", "-C", REPO, "lib", f"SWIFT={swift}"])
    if r.returncode != 0 or not os.path.isfile(BUILT):
        raise SystemExit(f"apixo: `make lib` failed (exit {r.returncode}); " + HOW)
    return BUILT


def library():
    return library_source() or build_library()


class build_py_with_library(build_py):
    def run(self):
        super().run()
        src = library()
        dest = os.path.join(self.build_lib, "apixo", "libapixo.so")
        self.mkpath(os.path.dirname(dest))
        shutil.copyfile(src, dest)
        os.chmod(dest, 0o755)
        self.announce(f"apixo: bundled {src}", level=3)


class BinaryDistribution(Distribution):
    """Carrying a shared library makes the package platform-specific (platlib, a
    platform-tagged wheel) although it has no extension module."""

    def has_ext_modules(self):
        return True


commands = {"build_py": build_py_with_library}
if bdist_wheel is not None:
    class bdist_wheel_platform(bdist_wheel):
        def get_tag(self):
            _, _, plat = super().get_tag()
            return "py3", "none", plat

    commands["bdist_wheel"] = bdist_wheel_platform

setup(distclass=BinaryDistribution, cmdclass=commands)
