"""pytest fixtures of the apixo-sim suite (defined in simtest.py)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from simtest import shared_sim, sim, sim_factory  # noqa: E402,F401
