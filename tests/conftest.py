"""Make tests/ importable (samples.py, forward_server.py) and the repo root importable when the
suite is run from a checkout without installing."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.dirname(HERE))
