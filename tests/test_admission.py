"""The bound on one session's backend requests: places are held for a block and given back after it."""

import pytest

from flow.admission import BackendSlots, Busy


def test_a_session_holds_at_most_its_places_and_gets_them_back():
    slots = BackendSlots(overall=8, per_session=2)
    with slots.hold("a"), slots.hold("a"):
        with pytest.raises(Busy, match="busy: this session already runs 2 requests to a backend"):
            with slots.hold("a"):
                pass
        with slots.hold("b"):  # another session is not counted against it
            pass
    with slots.hold("a"), slots.hold("a"):  # both places came back, after a refusal too
        pass


def test_a_place_comes_back_when_the_block_fails_or_a_generator_is_closed():
    slots = BackendSlots(overall=8, per_session=1)
    with pytest.raises(RuntimeError), slots.hold("a"):
        raise RuntimeError("the backend failed")

    def streaming():
        with slots.hold("a"):
            yield "chunk"

    stream = streaming()
    next(stream)
    with pytest.raises(Busy):
        with slots.hold("a"):
            pass
    stream.close()  # the page's Stop, or a closed page
    with slots.hold("a"):
        pass


def test_limits_below_one_are_refused():
    with pytest.raises(ValueError):
        BackendSlots(overall=0)
