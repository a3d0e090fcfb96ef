"""moto_server, serving one request at a time: the local AWS stand-in for the tests.

Why: moto runs a DynamoDB transaction by snapshotting the table and restoring the snapshot if
the transaction fails, so two concurrent requests can undo each other's committed writes
(a failing transaction wipes out another's success). DynamoDB itself isolates transactions
from each other and from single-item writes. One lock around every request makes the
stand-in as strict as the service; the tests' writers still interleave between requests, so
races on the chain head are still exercised.

Usage: python scripts/moto_serial.py -H 127.0.0.1 -p PORT
"""

import argparse
import os
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serial(environ, start_response):
        with lock:
            # The whole response is produced inside the lock.
            return list(app(environ, start_response))

    run_simple(
        args.host,
        args.port,
        serial,
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
