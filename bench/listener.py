"""The seed's listener (multiprocessing-listener.py), looped for `cargo xtask bench`.

    IRIS_AUTHKEY=... python listener.py HOST ADDRESS_FILE [CONNECTIONS]

Listens on (HOST, 0), writes `HOST:PORT` to ADDRESS_FILE (atomically), then
logs `listening` on stderr. With CONNECTIONS = 1 (the default) it runs the
seed's loop on the one connection it accepts, exactly as the seed does. With
more, it accepts that many connections (logging `accepted N` once all are
authenticated), then serves them all from one thread with the module's own
multiplexer, `multiprocessing.connection.wait`: each turn takes one message
from a ready connection and does what the seed's loop does with it. (A thread
per connection running the seed's loop was measured too: 2.3 times slower
with 64 clients, the threads fighting over the GIL.) When every connection
has sent 'close', it flushes stdout, logs `done` and exits.

Changes from the seed, all outside its loop: the address and key come from
the harness, and the listen backlog is 1024 instead of the default 1, which
would make concurrent clients' connection attempts wait for SYN retries.
"""

import os
import pickle
import sys
from multiprocessing.connection import Listener, wait

# The seed's Iris class, from the repository's one verbatim copy of it.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'seed'))
from iris import Iris  # noqa: E402,F401  (pickle.loads finds the class here)


def serve(connection):
    """The seed's loop, verbatim."""
    while True:
        payload = connection.recv()

        if payload == 'close':
            connection.close()
            break

        flower = pickle.loads(payload)
        area = flower.total_area()
        print(f'Area: {area}')


def step(connection):
    """One turn of the seed's loop; False once the client sent 'close'."""
    payload = connection.recv()

    if payload == 'close':
        connection.close()
        return False

    flower = pickle.loads(payload)
    area = flower.total_area()
    print(f'Area: {area}')
    return True


def log(message):
    print(message, file=sys.stderr, flush=True)


def write_address(path, host, port):
    temporary = f'{path}.tmp'
    with open(temporary, 'w') as file:
        file.write(f'{host}:{port}\n')
    os.replace(temporary, path)


def main():
    host, address_file = sys.argv[1], sys.argv[2]
    connections = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    password = os.environb[b'IRIS_AUTHKEY']

    listener = Listener((host, 0), authkey=password, backlog=1024)
    write_address(address_file, host, listener.address[1])
    log('listening')

    if connections == 1:
        connection = listener.accept()
        log('accepted 1')
        serve(connection)
    else:
        open_connections = [listener.accept() for _ in range(connections)]
        log(f'accepted {connections}')
        while open_connections:
            for connection in wait(open_connections):
                if not step(connection):
                    open_connections.remove(connection)

    listener.close()
    sys.stdout.flush()
    log('done')


if __name__ == '__main__':
    main()
