"""Cuts the network off in subprocesses the tests start (PYTHONPATH=this folder).

pytest-socket only guards the test process itself; tutorials run in a
subprocess, so they get the same guarantee from here: any attempt to open an
internet socket raises at once instead of downloading or hanging.
"""

import pytest_socket

pytest_socket.disable_socket(allow_unix_socket=True)
