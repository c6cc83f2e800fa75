"""moto's server for the tests, in a process of its own: `python -m tests.moto_serve` prints
"port <n>" once it listens on 127.0.0.1 and serves until its stdin closes (its parent ended).

Why not moto's ThreadedMotoServer in the pytest process: there every request of a night's workers
waited for the GIL of the process that runs the night and the assertions, and moto's dispatcher
worked out the service of every request anew (it lists moto's package directory and tries every
service's URL pattern, under one lock). A night into S3 took 75-87 s that way. Here the answer is
kept per host (it never changes for a host), and the server has a core to itself when one is free.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server


class _Dispatcher(DomainDispatcherApplication):
    """moto's dispatcher, its backend for a host looked up once."""

    def __init__(self) -> None:
        super().__init__(create_backend_app)
        self._backends: dict[str | None, Any] = {}

    def get_backend_for_host(self, host: str | None) -> Any:
        if host not in self._backends:
            self._backends[host] = super().get_backend_for_host(host)
        return self._backends[host]


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = make_server("127.0.0.1", 0, _Dispatcher(), threaded=True, request_handler=MotoRequestHandler)
    print(f"port {server.server_address[1]}", flush=True)
    os.dup2(2, 1)  # the parent reads one line only: anything moto prints later goes to stderr, not a full pipe
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()  # returns when the parent closes the pipe, or dies
    server.shutdown()


if __name__ == "__main__":
    main()
