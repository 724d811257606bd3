#!/usr/bin/python3
"""Serve Nova's, Cinder's or Neutron's API for development and tests.

Started by scripts/dev-keystone. Like scripts/keystone-serve.py: one
single-threaded wsgiref server on 127.0.0.1 (scripts/devserve.py; the
databases are SQLite, which allows one writer), built from Debian's
python3-<service> libraries and the paste file next to the service's config
file, without Debian's eventlet entry points (they ignore SIGTERM).

  openstack-serve.py --service nova --config-file DIR/nova.conf --port 8774
  openstack-serve.py --service neutron --config-file DIR/neutron.conf --init-db

--init-db (Neutron only) creates Neutron's schema from its models, as Neutron's
own unit tests do: its alembic migrations cannot run on SQLite.
"""

import argparse
import logging
import os
import signal
import sys

sys.dont_write_bytecode = True  # no __pycache__ in scripts/
import devserve  # noqa: E402 (next to this script)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--service', required=True,
                   choices=('nova', 'cinder', 'neutron'))
    p.add_argument('--config-file', required=True)
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int)
    p.add_argument('--pid-file')
    p.add_argument('--init-db', action='store_true')
    args = p.parse_args()
    if not args.init_db and args.port is None:
        p.error('--port is required')
    if args.init_db and args.service != 'neutron':
        p.error('--init-db is for neutron only')
    return args


def nova_app(config_file):
    # Nova reads its paste file and config file from these (first = paste).
    os.environ['OS_NOVA_CONFIG_DIR'] = os.path.dirname(config_file)
    os.environ['OS_NOVA_CONFIG_FILES'] = 'api-paste.ini;' + os.path.basename(
        config_file)
    sys.argv = sys.argv[:1]
    from nova.api.openstack.compute import wsgi
    return wsgi.init_application()


def cinder_app(config_file):
    sys.argv = [sys.argv[0], '--config-file', config_file]
    from cinder.wsgi import wsgi
    return wsgi.initialize_application()


def neutron_configure(config_file):
    os.environ['OS_NEUTRON_CONFIG_DIR'] = os.path.dirname(config_file)
    os.environ['OS_NEUTRON_CONFIG_FILES'] = os.path.basename(config_file)
    sys.argv = sys.argv[:1]
    from neutron import server
    server._init_configuration()


def neutron_app(config_file):
    neutron_configure(config_file)
    from neutron.server import api_eventlet
    return api_eventlet.eventlet_api_server()


def neutron_init_db(config_file):
    """Create Neutron's tables from its models and stamp alembic heads."""
    neutron_configure(config_file)
    from oslo_config import cfg
    from oslo_db import options as db_options
    import sqlalchemy
    from neutron.db.migration.models import head  # imports every model
    from neutron.db.migration import cli

    db_options.set_defaults(cfg.CONF)  # registers [database]
    engine = sqlalchemy.create_engine(cfg.CONF.database.connection)
    head.get_metadata().create_all(engine)
    engine.dispose()

    # `neutron-db-manage stamp heads`, in this process.
    sys.argv = ['neutron-db-manage', '--config-file', config_file,
                'stamp', 'heads']
    cli.main()


def main():
    # Until the server loop runs, SIGTERM ends the process at once (the
    # libraries may install their own handlers or ignore it while loading).
    def exit_now(signum, frame):
        os._exit(1)

    signal.signal(signal.SIGTERM, exit_now)
    signal.signal(signal.SIGINT, exit_now)

    args = parse_args()
    config_file = os.path.abspath(args.config_file)

    if args.init_db:
        neutron_init_db(config_file)
        logging.shutdown()
        os._exit(0)

    application = {'nova': nova_app, 'cinder': cinder_app,
                   'neutron': neutron_app}[args.service](config_file)

    devserve.serve(application, args.host, args.port, args.pid_file,
                   'openstack-serve', args.service)


if __name__ == '__main__':
    main()
