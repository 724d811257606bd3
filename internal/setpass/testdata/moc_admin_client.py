"""MOC's setpass admin client, as the README of MOC's setpass shows it.

Run by moc_test.go with Debian's python3-keystoneauth1. The case is chosen
by MOC_CASE; the values come from the environment. It prints one JSON
object: the answer, or the exception keystoneauth1 raised for it.
"""
import json
import os
import sys

from keystoneauth1.identity import v3
from keystoneauth1 import session
from keystoneauth1 import exceptions

env = os.environ
setpass_url = env["SETPASS_URL"].rstrip("/")
user_id = env["USER_ID"]


def moc_readme():
    # From MOC's README, only the values filled in:
    # Create a new keystoneauth auth object, it doesn't need to be scoped to
    # any project, but the user needs to have a role in the admin project.
    auth = v3.Password(auth_url=env["OS_AUTH_URL"],
                       username=env["ADMIN_USERNAME"],
                       user_domain_id=env["ADMIN_USER_DOMAIN_ID"],
                       password=env["ADMIN_PASSWORD"])

    sess = session.Session(auth=auth)

    body = {'password': env["TEMP_PASSWORD"], 'pin': env["PIN"]}
    r = sess.put(setpass_url + '/token/%s' % user_id, json=body)

    # this is the token that will be sent to the user
    token = r.text
    return r, token


def project_scoped():
    # The same client, its token scoped to a project.
    auth = v3.Password(auth_url=env["OS_AUTH_URL"],
                       username=env["ADMIN_USERNAME"],
                       user_domain_id=env["ADMIN_USER_DOMAIN_ID"],
                       password=env["ADMIN_PASSWORD"],
                       project_id=env["ADMIN_PROJECT_ID"])
    sess = session.Session(auth=auth)
    body = {'password': env["TEMP_PASSWORD"], 'pin': env["PIN"]}
    r = sess.put(setpass_url + '/token/%s' % user_id, json=body)
    return r, r.text


def no_token():
    sess = session.Session()
    body = {'password': env["TEMP_PASSWORD"], 'pin': env["PIN"]}
    r = sess.put(setpass_url + '/token/%s' % user_id, json=body)
    return r, r.text


def bad_token():
    sess = session.Session()
    body = {'password': env["TEMP_PASSWORD"], 'pin': env["PIN"]}
    r = sess.put(setpass_url + '/token/%s' % user_id, json=body,
                 headers={'X-Auth-Token': 'gAAAAABnot-a-keystone-token'})
    return r, r.text


CASES = {"moc-readme": moc_readme, "project-scoped": project_scoped,
         "no-token": no_token, "bad-token": bad_token}

try:
    r, token = CASES[env["MOC_CASE"]]()
    out = {"status": r.status_code, "token": token,
           "content_type": r.headers.get("Content-Type", "")}
except exceptions.HttpError as e:
    out = {"raised": type(e).__name__, "http_status": e.http_status,
           "message": e.message, "body": e.response.text,
           "content_type": e.response.headers.get("Content-Type", "")}
json.dump(out, sys.stdout)
