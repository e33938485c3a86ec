"""Runs the seed's multiprocessing-listener.py unchanged, and says when it listens.

Usage: run_seed_listener.py SEED_DIR

The seed program prints nothing until a flower arrives, and accepts exactly
one connection, so a test cannot probe it. This wrapper only wraps
Listener.__init__ to print "READY <port>" to stderr once the socket is bound,
then runs the seed file as __main__, byte for byte as it is.
"""
import os
import runpy
import sys
from multiprocessing import connection

seed_dir = sys.argv[1]
_original_init = connection.Listener.__init__


def _announcing_init(self, *args, **kwargs):
    _original_init(self, *args, **kwargs)
    print("READY %d" % self.address[1], file=sys.stderr, flush=True)


connection.Listener.__init__ = _announcing_init
sys.path.insert(0, seed_dir)
os.chdir(seed_dir)
sys.argv = [os.path.join(seed_dir, "multiprocessing-listener.py")]
runpy.run_path(sys.argv[0], run_name="__main__")
