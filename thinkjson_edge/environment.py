"""Process settings that native libraries read once, at load: set them here, and only here."""

from __future__ import annotations

import os


def bound_openmp_spinning() -> None:
    """Keep OpenMP worker threads (torch's and llama.cpp's) from spinning while they wait.

    GNU OpenMP spins 300,000 times before sleeping. With torch and llama.cpp in one process,
    or another busy process on the cores (a second extraction, a batch beside a TUI), the
    spinning threads starve the working ones: an extraction measured 4 s alone took 200 s
    beside another one, and model verification ran 10x slower. 1,000 spins costs nothing
    alone and shares the cores fairly (BENCHMARKS.md). Only effective before the first of
    torch or llama.cpp loads; a value the user set is kept.
    """
    os.environ.setdefault("GOMP_SPINCOUNT", "1000")


def stay_offline() -> None:
    """Tell the Hugging Face clients never to reach the network (read at their import).

    Every path but ``models pull`` runs offline: a site without a network must not wait on
    time-outs, and a site with one must not leak what it runs.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    bound_openmp_spinning()
