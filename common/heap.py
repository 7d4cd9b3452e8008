"""What is alive at a service's startup lives as long as the process: keep it out of the collector."""

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

# Young objects collected once this many more are alive than freed, not 700 (CPython's default):
# 16 requests in flight keep ~1,000 young objects alive, so at 700 every tenth hold walked them
# (29-39 us per hold, docs/benchmarks/floor.md "Seventh round"); cyclic garbage is 0.1 to 0.9
# objects per hold, so the larger young generation holds little garbage for long.
YOUNG_GC_THRESHOLD = 10_000


@dataclass
class _Heap:
    """The services of this process serving now, and the collector's threshold before them."""

    serving: int = 0
    threshold: tuple[int, int, int] = (700, 10, 10)
    lock: threading.Lock = field(default_factory=threading.Lock)


_HEAP = _Heap()


@contextmanager
def long_lived_heap() -> Iterator[None]:
    """Keep what is alive at startup out of the collector's walks; undone as the last one exits."""
    # In regional_api a full collection walked the ~150,000 objects of the app and its
    # libraries (70-100 ms once per ~1,000 holds), and young collections every ~10 holds walked
    # the requests in flight: 35-163 us of a hold in all.
    with _HEAP.lock:
        if _HEAP.serving == 0:
            _HEAP.threshold = gc.get_threshold()
            gc.set_threshold(YOUNG_GC_THRESHOLD, *_HEAP.threshold[1:])
        _HEAP.serving += 1
        gc.freeze()
    try:
        yield
    finally:
        with _HEAP.lock:
            _HEAP.serving -= 1
            # Services stopped in a longer-lived process (tests) leave nothing behind.
            if _HEAP.serving == 0:
                gc.set_threshold(*_HEAP.threshold)
                gc.unfreeze()
