#!/usr/bin/python3
"""Serve Keystone for development and tests (started by scripts/dev-keystone).

Single-threaded wsgiref on 127.0.0.1: SQLite allows one writer, and a
threaded server gave spurious 403s under load.
"""

import argparse
import logging
import os
import signal
import sys
from wsgiref import simple_server


def parse_args():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--config-file', required=True)
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--pid-file')
    return p.parse_args()


class _ServiceProviderRef(dict):
    """A dict that also allows attribute access.

    The federation manager reads the driver's rows as attributes (sp.auth_url)
    while everything downstream treats them as dicts; support both.
    """

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def patch_federation_sql():
    """Work around "database is locked" (HTTP 500) on SQLite.

    Stock get_enabled_service_providers returns a lazy Query from inside
    session_for_read(); it is only iterated later, while a token is
    rendered, which opens a read transaction outside any session that stays
    open until garbage collection and blocks the next writer for the full
    SQLite busy timeout. Materialise the rows inside the session instead.
    """
    from keystone.common import sql
    from keystone.federation.backends import sql as federation_sql

    def get_enabled_service_providers(self):
        with sql.session_for_read() as session:
            query = session.query(federation_sql.ServiceProviderModel)
            query = query.filter_by(enabled=True)
            return [_ServiceProviderRef(sp.to_dict()) for sp in query]

    federation_sql.Federation.get_enabled_service_providers = (
        get_enabled_service_providers)


class QuietHandler(simple_server.WSGIRequestHandler):
    # Access lines go to Keystone's log file, not to stderr.
    def log_message(self, format, *args):
        logging.getLogger('keystone.access').info(
            '%s %s', self.address_string(), format % args)


class Server(simple_server.WSGIServer):
    # The default backlog of 5 drops connections when parallel tests burst.
    request_queue_size = 128


def main():
    args = parse_args()
    config_file = os.path.abspath(args.config_file)

    # oslo.config parses sys.argv when Keystone configures itself; it must
    # not see our options. The config file is passed the way the stock WSGI
    # entry point expects it.
    sys.argv = sys.argv[:1]
    os.environ['OS_KEYSTONE_CONFIG_DIR'] = os.path.dirname(config_file)
    os.environ['OS_KEYSTONE_CONFIG_FILES'] = os.path.basename(config_file)

    patch_federation_sql()

    from keystone.server import wsgi as keystone_wsgi
    application = keystone_wsgi.initialize_public_application()

    server = simple_server.make_server(
        args.host, args.port, application,
        server_class=Server, handler_class=QuietHandler)
    # handle_request() returns at least every 0.5 s so a signal can stop the
    # loop between requests, never in the middle of one.
    server.timeout = 0.5

    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    pid = str(os.getpid())
    if args.pid_file:
        with open(args.pid_file, 'w') as f:
            f.write(pid + '\n')

    log = logging.getLogger('keystone.serve')
    log.info('serving on http://%s:%d', args.host, args.port)
    try:
        while not stopping:
            server.handle_request()
    finally:
        server.server_close()
        if args.pid_file:
            try:
                with open(args.pid_file) as f:
                    if f.read().strip() == pid:
                        os.unlink(args.pid_file)
            except FileNotFoundError:
                pass
        log.info('stopped')
        logging.shutdown()
        # Skip interpreter teardown: it takes seconds with Keystone loaded
        # and eventlet prints spurious errors during it.
        os._exit(0)


if __name__ == '__main__':
    main()
