"""Sends pickles that would run code (or exhaust memory) in CPython's pickle.loads.

Usage: attack.py PORT MARKER

Each attack uses its own connection, as the listener drops a connection on a
bad frame; for each, prints "dropped <name>" once the listener has closed it.
MARKER is a path that any successful attack would create.
"""
import os
import pickle
import subprocess
import sys
from multiprocessing.connection import Client

PASSWORD = b'My voice is my password, verify me.'
port, marker = int(sys.argv[1]), sys.argv[2]


class Call:
    """Pickles as a call of `function(*args)`: what a malicious pickle does."""

    def __init__(self, function, args):
        self.function, self.args = function, args

    def __reduce__(self):
        return (self.function, self.args)


touch = "__import__('os').system('touch %s')" % marker


def billion_laughs(levels=7, width=100):
    """A list of `width` references to a list of `width` references to ...
    through the memo: a few hundred bytes that expand to width**levels."""
    out = bytearray(b'\x80\x04]\x940')           # PROTO 4, EMPTY_LIST, MEMOIZE -> memo 0, POP
    for level in range(1, levels):
        out += b'(' + (b'h' + bytes([level - 1])) * width + b'l\x94'  # MARK, BINGET.., LIST, MEMOIZE
        if level < levels - 1:
            out += b'0'                          # POP: only the last level stays
    return bytes(out + b'.')


def deep_nesting(depth=100_000):
    """Lists nested `depth` deep: EMPTY_LIST * depth, then APPEND * (depth - 1)."""
    return b'\x80\x04' + b']' * depth + b'a' * (depth - 1) + b'.'


ATTACKS = [
    ("os.system", pickle.dumps(Call(os.system, ('touch %s' % marker,)))),
    ("os.system protocol 0", pickle.dumps(Call(os.system, ('touch %s' % marker,)), protocol=0)),
    ("subprocess.Popen", pickle.dumps(Call(subprocess.Popen, (['touch', marker],)))),
    ("builtins.eval", pickle.dumps(Call(eval, (touch,)))),
    ("nested reduce", pickle.dumps(Call(eval, (Call(str, (touch,)),)))),
    ("eval inside the seed's double pickle", pickle.dumps(pickle.dumps(Call(eval, (touch,))))),
    ("billion laughs", billion_laughs()),
    ("deep nesting", deep_nesting()),
    ("60 MB string", pickle.dumps('x' * 60_000_000, protocol=4)),
]

for name, frame in ATTACKS:
    connection = Client(('127.0.0.1', port), authkey=PASSWORD)
    connection.send_bytes(frame)
    try:
        connection.recv_bytes()
        print("ANSWERED %s" % name, flush=True)
    except (EOFError, ConnectionResetError):
        print("dropped %s" % name, flush=True)
    connection.close()
