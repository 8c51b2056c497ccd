from __future__ import annotations

import pytest

from signvideo.limits import Buckets, _forwarded_for


def test_a_bucket_allows_its_burst_then_says_how_long_to_wait() -> None:
    buckets = Buckets(per_minute=3)
    assert [buckets.take("a", now=100.0) for _ in range(3)] == [0, 0, 0]
    assert buckets.take("a", now=100.0) == pytest.approx(20.0)
    assert buckets.take("b", now=100.0) == 0  # another key has its own bucket
    # One token comes back every 20 s.
    assert buckets.take("a", now=121.0) == 0
    assert buckets.take("a", now=121.0) > 0


def test_buckets_remember_a_bounded_number_of_keys() -> None:
    buckets = Buckets(per_minute=1, keep=2)
    for key in ("a", "b", "c"):
        buckets.take(key, now=0.0)
    assert buckets.take("b", now=0.0) > 0 and buckets.take("c", now=0.0) > 0
    assert buckets.take("a", now=0.0) == 0  # forgotten, so full again


def test_the_nearest_untrusted_forwarded_address_is_the_client() -> None:
    trusted = frozenset({"127.0.0.1", "10.0.0.2"})
    assert _forwarded_for("203.0.113.9", trusted) == "203.0.113.9"
    # A client can put anything at the front; what our proxies appended counts.
    assert _forwarded_for("1.2.3.4, 203.0.113.9, 10.0.0.2", trusted) == "203.0.113.9"
    assert _forwarded_for("not-an-address", trusted) is None
    assert _forwarded_for("10.0.0.2", trusted) is None


def test_limits_count_an_ipv6_network_as_one_place() -> None:
    from signvideo.limits import client_network

    assert client_network("203.0.113.9") == "203.0.113.9"
    assert client_network("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert client_network("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert client_network("::ffff:203.0.113.9") == "203.0.113.9"
    assert client_network(None) == client_network("not an address") == "0.0.0.0"
