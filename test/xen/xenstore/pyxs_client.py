#!/usr/bin/python3
# A real xenstore client (Debian's python3-pyxs) against the simulator's xenstored socket.
# Usage: pyxs_client.py SOCKET_PATH. Prints one JSON object with what it saw.
import errno
import json
import sys

from pyxs import Client, PyXSError

path = sys.argv[1]
out = {}


def err(fn):
    try:
        fn()
        return None
    except PyXSError as e:
        return errno.errorcode.get(e.args[0], str(e.args[0]))


with Client(unix_socket_path=path) as c, Client(unix_socket_path=path) as other:
    # read / write / mkdir / ls / rm
    c.write(b"/test/a", b"hello")
    c.write(b"/test/b/c", b"deep")
    c.mkdir(b"/test/empty")
    out["read"] = c.read(b"/test/a").decode()
    out["read_deep"] = c.read(b"/test/b/c").decode()
    out["read_parent"] = c.read(b"/test/b").decode()
    out["ls"] = sorted(x.decode() for x in c.list(b"/test"))
    out["exists"] = [c.exists(b"/test/empty"), c.exists(b"/test/nope")]
    out["read_missing"] = err(lambda: c.read(b"/test/nope"))
    out["default"] = c.read(b"/test/nope", b"dflt").decode()
    c.delete(b"/test/b")
    out["ls_after_rm"] = sorted(x.decode() for x in c.list(b"/test"))
    out["rm_missing_ok"] = err(lambda: c.delete(b"/test/b"))
    out["rm_orphan"] = err(lambda: c.delete(b"/nothing/here"))
    out["walk"] = [(p.decode(), v.decode(), sorted(k.decode() for k in ch)) for p, v, ch in c.walk(b"/test")]

    # permissions
    c.set_perms(b"/test/a", [b"n5", b"r6"])
    out["perms"] = [p.decode() for p in c.get_perms(b"/test/a")]
    out["bad_perms"] = err(lambda: c.execute_command(14, b"/test/a\x00", b"q5\x00"))

    # domains
    out["domain_path"] = c.get_domain_path(5).decode()
    out["introduced0"] = c.is_domain_introduced(0)
    out["introduced9"] = c.is_domain_introduced(9)
    c.introduce_domain(9, 4242, 3)
    out["introduced9_after"] = c.is_domain_introduced(9)

    # transactions: a commit, and a conflict answered EAGAIN (commit() is False)
    c.transaction()
    c.write(b"/test/tx", b"1")
    out["tx_isolated"] = other.read(b"/test/tx", b"absent").decode()
    out["commit"] = c.commit()
    out["tx_read"] = other.read(b"/test/tx").decode()
    c.transaction()
    c.read(b"/test/tx")
    other.write(b"/test/tx", b"2")
    c.write(b"/test/tx", b"3")
    out["conflict_commit"] = c.commit()
    out["after_conflict"] = c.read(b"/test/tx").decode()
    c.transaction()
    c.write(b"/test/tx", b"9")
    c.rollback()
    out["after_rollback"] = c.read(b"/test/tx").decode()

    # watches: the registration event, then changes from another client
    m = c.monitor()
    m.watch(b"/test", b"tok")
    events = m.wait()
    seen = [next(events)]
    other.write(b"/test/w", b"x")
    seen.append(next(events))
    other.delete(b"/test/w")
    seen.append(next(events))
    m.unwatch(b"/test", b"tok")
    out["events"] = [[p.decode(), t.decode()] for p, t in seen]
    sm = other.monitor()
    sm.watch(b"@introduceDomain", b"intro")
    sevents = sm.wait()
    first = next(sevents)
    c.introduce_domain(10, 4343, 3)
    second = next(sevents)
    out["special"] = [[first[0].decode(), first[1].decode()], [second[0].decode(), second[1].decode()]]
    sm.unwatch(b"@introduceDomain", b"intro")

print(json.dumps(out))
