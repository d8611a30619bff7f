"""Functions the bounded child runs in the tests (importable by reference, as the child needs)."""

from __future__ import annotations

import errno
import os
import signal
import time

import numpy as np


def add(a: int, b: int) -> int:
    return a + b


def pid() -> int:
    return os.getpid()


def spin() -> None:
    """A reader stuck in a loop: the wall clock must kill it."""
    while True:
        time.sleep(0.01)


def allocate(mb: int) -> int:
    """Touch `mb` MiB: past the address-space bound this is a MemoryError in the child."""
    block = np.ones(mb << 20, dtype=np.uint8)
    return int(block[-1])


def leak_value() -> None:
    raise ValueError("Test^Patient 1234567 was in the header")


def disk_full() -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def crash() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)
