"""Every Python snippet of bindings/python/README.md runs against the simulator (and the
APIXO_LOG shell line too). Each runs as a script in a fresh interpreter with the
simulator's key and URL in the environment; a prelude only sets the client's time scale to
the simulator's, since the snippets are written for the real API's pace."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

from conftest import PKG_ROOT, REPO

README = (PKG_ROOT / "README.md").read_text()
SNIPPETS = re.findall(r"```python\n(.*?)```", README, re.S)
PRELUDE = (
    "import apixo as _apixo\n"
    "_init = _apixo.Client.__init__\n"
    "def _scaled(self, *args, **kwargs):\n"
    "    kwargs.setdefault('time_scale', float(__import__('os').environ['APIXO_TIME_SCALE']))\n"
    "    _init(self, *args, **kwargs)\n"
    "_apixo.Client.__init__ = _scaled\n"
)


def _env(sim):
    return dict(os.environ, APIXO_API_KEY=sim.key, APIXO_BASE_URL=sim.api,
                APIXO_TIME_SCALE=str(sim.time_scale), PYTHONPATH=str(PKG_ROOT))


def test_the_readme_has_its_snippets():
    assert len(SNIPPETS) >= 8


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_readme_snippet_runs(sim, tmp_path, index):
    script = tmp_path / f"snippet{index}.py"
    script.write_text(PRELUDE + SNIPPETS[index])
    r = subprocess.run([sys.executable, str(script)], env=_env(sim), cwd=str(tmp_path),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, SNIPPETS[index] + "\n---\n" + r.stderr


def test_readme_apixo_log_line_runs(sim, tmp_path):
    (line,) = [l for l in README.splitlines() if l.startswith("APIXO_LOG=debug python3 ")]
    argv = shlex.split(line)[1:]
    argv[0] = sys.executable
    argv[1] = str(REPO / argv[1])
    env = dict(_env(sim), APIXO_LOG="debug")
    r = subprocess.run(argv + ["--max-images", "1", "--out", str(tmp_path)], env=env,
                       cwd=str(tmp_path), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "submit accepted" in r.stderr and "DEBUG" in r.stderr
