#!/usr/bin/python3
"""Serve Keystone for development and tests (started by scripts/dev-keystone).

Single-threaded wsgiref on 127.0.0.1 (scripts/devserve.py): SQLite allows one
writer, and a threaded server gave spurious 403s under load.
"""

import argparse
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in scripts/
import devserve  # noqa: E402 (next to this script)


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

    devserve.serve(application, args.host, args.port, args.pid_file,
                   'keystone')


if __name__ == '__main__':
    main()
