"""The connection file of a sandboxed Jupyter kernel: ports and a fresh signing key."""

from __future__ import annotations

import secrets
import socket

CHANNELS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
SANDBOX_PORTS = (50001, 50002, 50003, 50004, 50005)  # the sandbox has a network namespace of its own


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on now, on the host's loopback (for kernels outside a namespace)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def connection_info(own_namespace: bool) -> dict:
    """What ``ipykernel -f`` reads and the executor connects with."""
    ports = SANDBOX_PORTS if own_namespace else free_ports(len(CHANNELS))
    return {
        "transport": "tcp",
        "ip": "127.0.0.1",
        **dict(zip(CHANNELS, ports, strict=True)),
        "key": secrets.token_hex(32),
        "signature_scheme": "hmac-sha256",
        "kernel_name": "python3",
    }
