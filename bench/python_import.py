#!/usr/bin/env python3
"""Start-up cost of `import apixo`: the median wall time of fresh interpreters running
`import apixo`, against `python3 -c pass` (and the standard modules apixo needs) in the
same run, alternated so that the machine's load hits both alike.

    python3 -m venv /tmp/v && APIXO_LIBRARY=build/lib/libapixo.so /tmp/v/bin/python bench/python_import.py [runs]

(a fresh venv: the interpreter of a development machine may import more at start-up).
The figure that counts is the CPU time over `pass`; wall time also carries the load.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

PKG = Path(os.environ.get("APIXO_BENCH_PKG") or
           Path(__file__).resolve().parent.parent / "bindings" / "python")
CASES = {
    "python3 -c pass": "pass",
    "import ctypes": "import ctypes",
    "import logging": "import logging",
    "import typing": "import typing",
    "import apixo": "import apixo",
}


def once(code: str, env: dict) -> tuple:
    """(wall seconds, CPU seconds: user + system) of one fresh interpreter."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    # as installed: byte-compiled (the development environment may set PYTHONDONTWRITEBYTECODE)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(PKG)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(PKG / "apixo")], env=env,
                   check=True)
    times: dict = {name: [] for name in CASES}
    for _ in range(runs):
        for name, code in CASES.items():
            times[name].append(once(code, env))
    # CPU time is what the import costs; wall time also carries the machine's load
    base_wall = statistics.median(w for w, _ in times["python3 -c pass"])
    base_cpu = statistics.median(c for _, c in times["python3 -c pass"])
    for name, got in times.items():
        wall = statistics.median(w for w, _ in got)
        cpu = statistics.median(c for _, c in got)
        print(f"{name:16s} wall {wall * 1000:6.1f} ms ({(wall - base_wall) * 1000:+6.1f})   "
              f"cpu {cpu * 1000:6.1f} ms ({(cpu - base_cpu) * 1000:+6.1f} over `pass`), "
              f"medians of {runs} runs")


if __name__ == "__main__":
    main()
