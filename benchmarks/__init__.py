"""numrnn's asv benchmarks (see benchmarks/README.md); ``common`` holds the shared pieces.

``asv run --python=same`` benchmarks whatever ``numrnn`` the current interpreter imports. When
it imports none (a fresh checkout, nothing installed), fall back to this checkout, so the
quick local run works without ``pip install -e .``. In asv's own environments (``asv run``
on commits, ``asv continuous``) numrnn is installed and this does nothing.
"""

import importlib.util
import os
import sys

if importlib.util.find_spec("numrnn") is None:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
