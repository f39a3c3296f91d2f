"""A free TCP port for launchers that need one named (accelerate launch --main_process_port).

Fixed ports collide when suites run side by side on one machine (EADDRINUSE). torchrun needs none: `--standalone`
lets its rendezvous bind port 0.
"""

import socket


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
