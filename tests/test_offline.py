"""The suite runs with the network blocked: a test that tries it fails."""

import socket

import pytest
from pytest_socket import SocketBlockedError


def test_network_is_blocked_in_tests():
    with pytest.raises(SocketBlockedError):
        socket.create_connection(("example.com", 80), timeout=1)
