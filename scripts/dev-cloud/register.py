#!/usr/bin/python3
"""Register an OpenStack service in the local Keystone (scripts/dev-keystone).

Idempotent: ensures the `service` project, the service user (its password is
reset to the one given) with `admin` on that project, and for each TYPE a
service entry NAME with exactly one public, internal and admin endpoint URL in
REGION. The admin password comes from the environment (OS_PASSWORD), the
service user's from --password-file. Standard library only: it runs in ~0.1 s.

  register.py --auth-url http://127.0.0.1:5000/v3 --region RegionOne \
      --user nova --password-file F --name nova --type compute \
      --url http://127.0.0.1:8774/v2.1
"""

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request


class Keystone:
    def __init__(self, auth_url):
        self.base = auth_url.rstrip('/')
        self.token = None

    def call(self, method, path, body=None, ok=(200, 201, 204)):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data,
                                     method=method)
        req.add_header('Content-Type', 'application/json')
        if self.token:
            req.add_header('X-Auth-Token', self.token)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
                headers = resp.headers
                status = resp.status
        except urllib.error.HTTPError as e:
            sys.exit('register: %s %s: HTTP %d: %s' % (
                method, path, e.code, e.read().decode(errors='replace')[:500]))
        if status not in ok:
            sys.exit('register: %s %s: HTTP %d' % (method, path, status))
        return (json.loads(raw) if raw else None), headers

    def login(self, user, password, project):
        body = {'auth': {
            'identity': {'methods': ['password'], 'password': {'user': {
                'name': user, 'password': password,
                'domain': {'name': 'Default'}}}},
            'scope': {'project': {'name': project,
                                  'domain': {'name': 'Default'}}}}}
        _, headers = self.call('POST', '/auth/tokens', body)
        self.token = headers['X-Subject-Token']

    def find(self, collection, **query):
        path = '/%s?%s' % (collection, urllib.parse.urlencode(query))
        data, _ = self.call('GET', path)
        return data[collection]


def ensure_one(ks, collection, key, query, create):
    found = ks.find(collection, **query)
    if found:
        return found[0]
    data, _ = ks.call('POST', '/' + collection, {key: create})
    return data[key]


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--auth-url', required=True)
    p.add_argument('--region', required=True)
    p.add_argument('--user', required=True)
    p.add_argument('--password-file', required=True)
    p.add_argument('--name', required=True)
    p.add_argument('--type', action='append', required=True)
    p.add_argument('--url', required=True)
    args = p.parse_args()

    admin_password = os.environ.get('OS_PASSWORD')
    if not admin_password:
        sys.exit('register: OS_PASSWORD (the admin password) is not set')
    with open(args.password_file) as f:
        password = f.read().strip()

    ks = Keystone(args.auth_url)
    ks.login('admin', admin_password, 'admin')

    project = ensure_one(ks, 'projects', 'project',
                         {'name': 'service', 'domain_id': 'default'},
                         {'name': 'service', 'domain_id': 'default',
                          'description': 'OpenStack service users'})
    user = ensure_one(ks, 'users', 'user',
                      {'name': args.user, 'domain_id': 'default'},
                      {'name': args.user, 'domain_id': 'default',
                       'password': password})
    ks.call('PATCH', '/users/' + user['id'],
            {'user': {'password': password, 'enabled': True}})
    roles = ks.find('roles', name='admin')
    if not roles:
        sys.exit('register: no admin role in Keystone')
    ks.call('PUT', '/projects/%s/users/%s/roles/%s' % (
        project['id'], user['id'], roles[0]['id']))

    for stype in args.type:
        services = [s for s in ks.find('services', type=stype)
                    if s.get('name') == args.name]
        if services:
            service = services[0]
        else:
            data, _ = ks.call('POST', '/services', {'service': {
                'name': args.name, 'type': stype, 'enabled': True}})
            service = data['service']
        endpoints = ks.find('endpoints', service_id=service['id'])
        for interface in ('public', 'internal', 'admin'):
            mine = [e for e in endpoints if e['interface'] == interface]
            keep = None
            for e in mine:
                if (keep is None and e['url'] == args.url
                        and e.get('region_id') == args.region):
                    keep = e
                else:
                    ks.call('DELETE', '/endpoints/' + e['id'])
            if keep is None:
                ks.call('POST', '/endpoints', {'endpoint': {
                    'service_id': service['id'], 'interface': interface,
                    'url': args.url, 'region_id': args.region,
                    'enabled': True}})


if __name__ == '__main__':
    main()
