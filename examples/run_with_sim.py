#!/usr/bin/env python3
"""Runs a command against a fresh apixo-sim: starts the simulator on a free loopback port,
exports APIXO_BASE_URL, APIXO_API_KEY and APIXO_TIME_SCALE for the command, and stops the
simulator afterwards.

    python3 examples/run_with_sim.py [--time-scale 0.1] [--small-images] -- CMD ARGS...
"""
import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SIM = os.path.join(HERE, "..", "sim", "apixo_sim.py")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--time-scale", default="0.1")
    p.add_argument("--small-images", action="store_true")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    a = p.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    if not cmd:
        p.error("no command given")
    sim_args = [sys.executable, SIM, "--port", "0", "--time-scale", a.time_scale]
    if a.small_images:
        sim_args.append("--small-images")
    sim = subprocess.Popen(sim_args, stdout=subprocess.PIPE, text=True)
    try:
        line = sim.stdout.readline().strip()
        prefix = "apixo-sim listening on "
        if not line.startswith(prefix):
            sys.exit("simulator did not start: %r" % line)
        base = line[len(prefix):]
        env = dict(os.environ, APIXO_BASE_URL=base + "/api/v1", APIXO_API_KEY="sk-sim",
                   APIXO_TIME_SCALE=a.time_scale)
        print("apixo-sim at %s (time scale %s)" % (base, a.time_scale), flush=True)
        return subprocess.call(cmd, env=env)
    finally:
        sim.terminate()
        try:
            sim.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sim.kill()


if __name__ == "__main__":
    sys.exit(main())
