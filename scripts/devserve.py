"""Serving loop shared by scripts/keystone-serve.py and openstack-serve.py.

One single-threaded wsgiref server (the dev databases are SQLite, which allows
one writer) that logs requests through `logging` rather than to stderr, stops
on SIGTERM or SIGINT between requests (a request in progress is finished
first), writes its PID file and removes it only while it is still its own,
and ends with os._exit: interpreter teardown takes seconds with the OpenStack
libraries loaded and eventlet prints spurious errors during it.
"""

import logging
import os
import signal
from wsgiref import simple_server


class _QuietHandler(simple_server.WSGIRequestHandler):
    # Access lines go to the service's log file, not to stderr.
    def log_message(self, format, *args):
        logging.getLogger(self.server.access_log).info(
            '%s %s', self.address_string(), format % args)


class _Server(simple_server.WSGIServer):
    # The default backlog of 5 drops connections when parallel tests burst.
    request_queue_size = 128
    access_log = 'devserve.access'
    busy = False

    def process_request(self, request, client_address):
        self.busy = True
        try:
            super().process_request(request, client_address)
        finally:
            self.busy = False


def serve(application, host, port, pid_file, log_name, what=''):
    """Serve application on host:port until SIGTERM or SIGINT; never returns.

    Logs go to the loggers log_name and log_name + '.access'; what names the
    service in the start-up line.
    """
    server = simple_server.make_server(
        host, port, application,
        server_class=_Server, handler_class=_QuietHandler)
    server.access_log = log_name + '.access'
    # handle_request() returns at least every 0.5 s.
    server.timeout = 0.5

    log = logging.getLogger(log_name)
    pid = str(os.getpid())
    stopping = False

    def finish():
        server.server_close()
        if pid_file:
            try:
                with open(pid_file) as f:
                    if f.read().strip() == pid:
                        os.unlink(pid_file)
            except FileNotFoundError:
                pass
        log.info('stopped')
        logging.shutdown()
        os._exit(0)

    def stop(signum, frame):
        # Between requests: exit now. In the middle of one: after it.
        nonlocal stopping
        if server.busy:
            stopping = True
        else:
            finish()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    if pid_file:
        with open(pid_file, 'w') as f:
            f.write(pid + '\n')

    log.info('serving %son http://%s:%d', what and what + ' ', host, port)
    try:
        while not stopping:
            server.handle_request()
    finally:
        finish()
