"""port_is_free: the probe `tradeoff dashboard` and `tradeoff local serve` run before starting."""

from __future__ import annotations

import socket

import pytest

from tradeoff.evals.ports import http_url, port_is_free


@pytest.mark.parametrize(
    ("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")]
)
def test_a_live_listener_holds_the_port_and_a_stopped_one_frees_it(
    family: socket.AddressFamily, host: str
) -> None:
    try:
        held = socket.socket(family)
        held.bind((host, 0))
    except OSError:
        pytest.skip(f"no {host} loopback here")
    with held:
        port = held.getsockname()[1]
        held.listen()
        assert not port_is_free(host, port)
        with socket.create_connection((host, port)):  # leaves TIME_WAIT behind when closed
            pass
    assert port_is_free(host, port)


def test_http_url_brackets_ipv6_hosts() -> None:
    assert http_url("127.0.0.1", 80) == "http://127.0.0.1:80"
    assert http_url("::1", 8000) == "http://[::1]:8000"
