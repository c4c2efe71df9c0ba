"""Build hooks: put libapixo.so inside the package and tag the wheel for the platform.

``pip install ./bindings/python`` and ``pip wheel ./bindings/python`` copy the library
built by ``make`` (``../../build/lib/libapixo.so``, or the file named by
``APIXO_LIBRARY``) into the package, so the installed package needs neither the
source tree nor any build tools. A wheel that carries the library is tagged
``py3-none-<platform>`` (any CPython 3, no Python ABI: the library is loaded with
ctypes) instead of ``py3-none-any``. Without a built library the package is pure
Python and finds libapixo through APIXO_LIBRARY or the system loader at run time.
"""

import os
import shutil

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:  # setuptools >= 70.1 ships bdist_wheel itself
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # older setuptools: the wheel package (build_meta requires it there)
    from wheel.bdist_wheel import bdist_wheel

HERE = os.path.dirname(os.path.abspath(__file__))


def library_source():
    """The libapixo.so to ship, or None."""
    candidates = [
        os.environ.get("APIXO_LIBRARY"),
        os.path.join(HERE, "..", "..", "build", "lib", "libapixo.so"),
        os.path.join(HERE, "apixo", "libapixo.so"),
    ]
    for path in candidates:
        if path and os.path.isfile(path):
            return os.path.abspath(path)
    return None


class build_py_with_library(build_py):
    def run(self):
        super().run()
        src = library_source()
        if src is None:
            self.announce("apixo: no libapixo.so found (run `make` first); building a "
                          "pure-Python package that loads the library at run time", level=3)
            return
        dest = os.path.join(self.build_lib, "apixo", "libapixo.so")
        self.mkpath(os.path.dirname(dest))
        shutil.copyfile(src, dest)
        os.chmod(dest, 0o755)
        self.announce(f"apixo: bundled {src}", level=3)


class BinaryDistribution(Distribution):
    """Carrying a shared library makes the package platform-specific (platlib, a
    platform-tagged wheel) although it has no extension module."""

    def has_ext_modules(self):
        return library_source() is not None


class bdist_wheel_platform(bdist_wheel):
    def get_tag(self):
        python, abi, plat = super().get_tag()
        if not self.root_is_pure:
            return "py3", "none", plat
        return python, abi, plat


setup(
    distclass=BinaryDistribution,
    cmdclass={"build_py": build_py_with_library, "bdist_wheel": bdist_wheel_platform},
)
