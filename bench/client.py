"""The seed's client (multiprocessing-client.py), looped for `cargo xtask bench`.

    IRIS_AUTHKEY=... python client.py HOST:PORT COUNT

Waits for its standard input to end (the harness's start signal, so that
interpreter start-up is not timed), connects, then sends the seed's flower
COUNT times exactly as the seed sends it once: pickled with `pickle.dumps`,
and that bytes object pickled again by `Connection.send`. Then 'close'.
"""

import os
import pickle
import sys
from multiprocessing.connection import Client

# The seed's Iris class, from the repository's one verbatim copy of it.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'seed'))
from iris import Iris  # noqa: E402


def main():
    host, port = sys.argv[1].rsplit(':', 1)
    count = int(sys.argv[2])
    password = os.environb[b'IRIS_AUTHKEY']
    sys.stdin.buffer.read()

    flower = Iris(
        sepal_length=5.1,
        sepal_width=3.5,
        petal_length=1.4,
        petal_width=0.2,
        species='setosa'
    )

    connection = Client((host, int(port)), authkey=password)
    for _ in range(count):
        payload = pickle.dumps(flower)
        connection.send(payload)
    connection.send('close')
    connection.close()


if __name__ == '__main__':
    main()
