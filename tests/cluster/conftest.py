"""One real Ray cluster per test module (``ray_head``), on the loopback, stopped when done."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("ray")  # the cluster extra (CI installs it with the test extra)

from ray_head import RayHead, start_head, stop_head


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayHead]:
    """A head with 2 CPUs that this process and the batches it starts join as drivers."""
    head = start_head(tmp_path_factory.mktemp("ray"))
    try:
        yield head
    finally:
        stop_head(head)
