"""Training pipeline (installed as ``thinkjson_edge.train``).

Needs the ``train`` extra (torch, transformers, trl, peft). Nothing in the
runtime imports this package.
"""

import os

# GNU OpenMP spins 300,000 times before a waiting thread sleeps; beside another busy
# process on the same cores, torch's threads then starve each other (a CPU training
# step measured 5-10x slower). As the runtime does for llama.cpp (engine.py), bound the
# spinning; it must be set before torch loads its OpenMP library, and a user's value wins.
os.environ.setdefault("GOMP_SPINCOUNT", "1000")
