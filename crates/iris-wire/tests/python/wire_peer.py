"""A CPython peer for iris-wire's interop tests, using only the standard library.

Usage: wire_peer.py listener            (prints "LISTENING <port>", then serves one client)
       wire_peer.py client <host> <port>

The authkey comes from the environment variable IRIS_TEST_AUTHKEY (hex).
After the handshake both roles run the same conversation with the Rust side:
  Rust   -> Python  b"hello from rust"
  Python -> Rust    b"hello from python <version>"
  Python -> Rust    100 MiB of bytes(range(256)) repeated
  Rust   -> Python  the same 100 MiB
  Python -> Rust    b"ok"
Authentication failures print "AuthenticationError: <reason>" and exit 3.
"""
import os
import sys
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Listener

BIG = bytes(range(256)) * (100 * 1024 * 1024 // 256)


def converse(connection):
    assert connection.recv_bytes() == b"hello from rust"
    connection.send_bytes(b"hello from python %d.%d" % sys.version_info[:2])
    connection.send_bytes(BIG)
    back = connection.recv_bytes()
    if back != BIG:
        print("MISMATCH %d bytes" % len(back), flush=True)
        sys.exit(4)
    connection.send_bytes(b"ok")
    connection.close()


def main():
    key = bytes.fromhex(os.environ["IRIS_TEST_AUTHKEY"])
    try:
        if sys.argv[1] == "listener":
            with Listener(("127.0.0.1", 0), authkey=key) as listener:
                print("LISTENING %d" % listener.address[1], flush=True)
                connection = listener.accept()
                print("AUTHENTICATED", flush=True)
                converse(connection)
        else:
            connection = Client((sys.argv[2], int(sys.argv[3])), authkey=key)
            print("AUTHENTICATED", flush=True)
            converse(connection)
    except AuthenticationError as error:
        print("AuthenticationError: %s" % error, flush=True)
        sys.exit(3)
    print("DONE", flush=True)


main()
