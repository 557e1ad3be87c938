"""moto's server, one request at a time.

DynamoDB applies each request atomically. moto's server does not: it handles requests
on concurrent threads, applies a transaction's items one by one, and on a cancelled
transaction restores a copy of the whole table taken before it began, undoing what
another request wrote meanwhile. Tests with concurrent writers in several processes
(the functions under `cargo lambda watch` and the test itself) then fail for moto's
sake, not the code's. This wrapper keeps moto's threaded server (connections stay
independent) but runs one request through moto at a time, which is what DynamoDB's
per-request atomicity promises.

Usage: python moto_serial.py -H 127.0.0.1 -p PORT   (same flags as moto_server)
"""

import threading

from moto import server

_TURN = threading.Lock()


class _OneAtATime:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        with _TURN:
            # Drain the response inside the lock: the work is done by then.
            return list(self.app(environ, start_response))


_run_simple = server.run_simple


def _serial_run_simple(host, port, app, **kwargs):
    return _run_simple(host, port, _OneAtATime(app), **kwargs)


server.run_simple = _serial_run_simple

if __name__ == "__main__":
    server.main()
