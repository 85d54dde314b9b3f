"""The one rule for where a server may listen: TLS anywhere, plaintext on loopback only.

The registry's gRPC server and every HTTP(S) server built on :mod:`clearance.web`
check their ``--listen`` address through :func:`check_listen_address`.
"""

from __future__ import annotations

import ipaddress

from clearance.errors import InvalidArgumentError


def split_listen_address(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` as ``(host, port)``; IPv6 hosts keep no brackets.

    Raises:
        InvalidArgumentError: not ``HOST:PORT`` with a port in 0..65535.
    """
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not host or int(port) > 65535:
        raise InvalidArgumentError("--listen", "must be HOST:PORT, e.g. 127.0.0.1:7443")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, brackets allowed) is this machine's loopback."""
    bare = host.strip("[]")
    if bare == "localhost":
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False


def check_listen_address(listen: str, *, insecure: bool) -> None:
    """Plaintext is allowed on loopback only.

    Raises:
        InvalidArgumentError: a malformed address, or ``insecure`` on a non-loopback one.
    """
    host, _port = split_listen_address(listen)
    if insecure and not is_loopback(host):
        raise InvalidArgumentError(
            "--insecure", f"plaintext is refused on {host}; use TLS or a loopback address"
        )
