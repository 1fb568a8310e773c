"""Running independent pieces of work in threads, so that their decoding is shared.

The threads only wait on the engine: each ``llama_decode`` call of a shared context
(``engine.parallel``) serves all of them, with the GIL released.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

Item = TypeVar("Item")
Output = TypeVar("Output")


def in_threads(
    work: Callable[[Item], Output], items: Sequence[Item], *, width: int
) -> list[Output]:
    """``work`` on every item, at most ``width`` at once, results in the items' order; the
    exception of the first item that failed is raised once the others have finished."""
    if width <= 1 or len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(width, len(items))) as pool:
        return list(pool.map(work, items))


def as_finished(
    work: Callable[[Item], Output], items: Sequence[Item], *, width: int
) -> Iterator[tuple[Item, Output]]:
    """Each item with its result as it finishes, at most ``width`` at once, in order when
    ``width`` is 1. An exception is raised as its item finishes; the work in flight then
    finishes before it propagates (a thread cannot be stopped from outside)."""
    if width <= 1:
        for item in items:
            yield item, work(item)
        return
    waiting = list(reversed(items))
    with ThreadPoolExecutor(max_workers=width) as pool:
        running: dict[Future[Output], Item] = {}
        while waiting or running:
            while waiting and len(running) < width:
                item = waiting.pop()
                running[pool.submit(work, item)] = item
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                yield running.pop(future), future.result()
