"""Whether a server could listen on host:port (for clear errors before starting one)."""

from __future__ import annotations

import socket


def port_is_free(host: str, port: int) -> bool:
    """True if `port` can be bound on `host` (IPv4 or IPv6), as a server would bind it.

    SO_REUSEADDR as servers set it: a port whose last server just stopped (connections in
    TIME_WAIT) is free, and only a live listener makes the bind fail.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def http_url(host: str, port: int) -> str:
    """`http://host:port`, with an IPv6 host in brackets."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
