"""seqadapt-predict's input: bounded lines, never held whole when too long, handed over in batches as they arrive."""

import io
import threading

import pytest

from seqadapt.cli.input_lines import SKIP_BYTES, arrived_batches, read_lines


class RecordingReader(io.BytesIO):
    """A byte stream that records the largest ``readline`` it was asked for."""

    largest = 0

    def readline(self, size=-1):
        self.largest = max(self.largest, size if size >= 0 else len(self.getbuffer()))
        return super().readline(size)


def test_a_long_line_is_read_past_in_bounded_pieces():
    stream = RecordingReader(b"first\n" + b"x" * 10_000_000 + b"\nlast\r\n")
    assert list(read_lines(stream, 1000)) == [(1, b"first"), (2, None), (3, b"last")]
    assert 0 < stream.largest <= max(1002, SKIP_BYTES)  # never a readline of the whole 10 MB line


@pytest.mark.parametrize(("data", "lines"), [
    (b"", []),
    (b"abc", [(1, b"abc")]),  # no line end at the end
    (b"abcd\r\n", [(1, b"abcd")]),  # 4 bytes: the limit; its line end does not count
    (b"abcde\n\n", [(1, None), (2, b"")]),
    (b"abcde", [(1, None)]),
])
def test_line_ends_and_the_limit(data, lines):
    assert list(read_lines(io.BytesIO(data), 4)) == lines


def test_a_batch_is_handed_over_without_waiting_for_it_to_fill():
    handed = threading.Event()

    def slow_items():
        yield 1
        assert handed.wait(timeout=10), "the first item was not handed over while the next was awaited"
        yield 2
        yield 3

    batches = arrived_batches(slow_items(), size=8)
    assert next(batches) == [1]
    handed.set()
    assert [item for batch in batches for item in batch] == [2, 3]


def test_batches_hold_at_most_their_size_and_every_item_in_order():
    batches = list(arrived_batches(iter(range(50)), size=8))
    assert all(1 <= len(batch) <= 8 for batch in batches)
    assert [item for batch in batches for item in batch] == list(range(50))


def test_an_error_while_reading_is_raised_after_the_items_before_it():
    def failing():
        yield "a"
        raise OSError("stdin went away")

    batches = arrived_batches(failing(), size=4)
    assert next(batches) == ["a"]
    with pytest.raises(OSError, match="stdin went away"):
        next(batches)
