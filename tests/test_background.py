"""Batches made on a thread of their own: in order, errors raised where they are used, and
a consumer that stops early never waits on the producer."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from jobs.pairs_job import _in_background


def test_items_arrive_in_order() -> None:
    assert list(_in_background(iter(range(100)), depth=2)) == list(range(100))


def test_an_error_while_producing_is_raised_to_the_consumer() -> None:
    def failing() -> Iterator[int]:
        yield 1
        raise OSError("disk gone")

    produced = _in_background(failing(), depth=1)
    assert next(produced) == 1
    with pytest.raises(OSError, match="disk gone"):
        next(produced)


def test_a_consumer_that_stops_early_lets_the_producer_go() -> None:
    """The producer, its queue full, is waiting to hand over its error when the consumer
    stops: closing the consumer must return, not wait for the producer forever."""

    def two_then_error() -> Iterator[int]:
        yield from (0, 1)
        raise ValueError("never seen")

    consumed = _in_background(two_then_error(), depth=1)
    assert next(consumed) == 0
    time.sleep(0.3)  # the producer has put 1 and now waits to put its error
    closing = threading.Thread(target=consumed.close, daemon=True)
    closing.start()
    closing.join(timeout=5)
    assert not closing.is_alive()
