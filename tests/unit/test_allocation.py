"""The published-quantity rule, row by row."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inventory_engine.domain.allocation import ChannelShare, published_quantity


@pytest.mark.parametrize(
    ("available", "share", "expected"),
    [
        (10, ChannelShare(), 10),
        (0, ChannelShare(), 0),
        (-3, ChannelShare(), 0),
        (10, ChannelShare(percent=50), 5),
        (9, ChannelShare(percent=50), 4),  # floor
        (10, ChannelShare(buffer=3), 7),
        (2, ChannelShare(buffer=3), 0),
        (10, ChannelShare(percent=50, buffer=2), 3),
        (10, ChannelShare(max=4), 4),
        (2_000_000, ChannelShare(ceiling=999_999), 999_999),
        (200_000, ChannelShare(ceiling=100_000, max=150_000), 100_000),
        (10, ChannelShare(percent=0), 0),
    ],
)
def test_published_quantity_rows(available, share, expected):
    assert published_quantity(available, share) == expected


@pytest.mark.parametrize("kwargs", [{"percent": 101}, {"percent": -1}, {"buffer": -1}, {"max": -5}])
def test_channel_share_rejects_impossible_rules(kwargs):
    with pytest.raises(ValueError, match="must"):
        ChannelShare(**kwargs)


@given(
    available=st.integers(-10, 10**9),
    percent=st.integers(0, 100),
    buffer=st.integers(0, 1000),
)
def test_published_never_exceeds_available_or_goes_negative(available, percent, buffer):
    shown = published_quantity(available, ChannelShare(percent=percent, buffer=buffer))
    assert 0 <= shown <= max(available, 0)
