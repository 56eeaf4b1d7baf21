"""Ports for tests: one nobody else binds right now (tests of other engineers
run on this machine at the same time, so fixed ports collide)."""
import socket


def free_port(kind=socket.SOCK_STREAM, family=socket.AF_INET):
    with socket.socket(family, kind) as s:
        s.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        return s.getsockname()[1]
