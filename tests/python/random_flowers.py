"""Sends the same random flowers, the seed client's way, to several listeners.

Usage: random_flowers.py SEED_DIR RANDOM_SEED COUNT PORT [PORT...]

COUNT flowers of the seed's Iris class, with int, float and mixed
measurements (small ints, ints near 2**53 and 2**63, data-set-like floats,
tiny and huge floats), pickled with a random protocol from 0 to 5 and sent
with Connection.send, as the seed's client sends its one flower; then
'close'. Every port gets the same flowers in the same order, so that the
listeners' outputs can be compared line for line. Only what iris accepts is
generated: positive ints below 2**63 and positive finite floats.
"""
import pickle
import random
import sys
from multiprocessing.connection import Client

sys.path.insert(0, sys.argv[1])
from iris import Iris  # noqa: E402  (the seed's class, from SEED_DIR)

PASSWORD = b'My voice is my password, verify me.'
SPECIES = ['setosa', 'versicolor', 'virginica']


def measurement(rng, kinds):
    kind = rng.choice(kinds)
    if kind == 0:
        return rng.randint(1, 20)
    if kind == 1:
        return 2**53 + rng.randint(-3, 3)
    if kind == 2:
        return 2**63 - rng.randint(1, 5)
    if kind == 3:
        return rng.randint(1, 2**63 - 1)
    if kind == 4:
        return float(2**53 + rng.randint(-3, 3))
    if kind == 5:
        return rng.choice([5e-324, 1e-310, 2.2250738585072014e-308, 1e-300, 1e-16, 1e-5])
    if kind == 6:
        return 2.0**63 * rng.uniform(0.5, 2.0)
    if kind == 7:
        return rng.uniform(1e-10, 1e10)
    return round(rng.uniform(1.0, 8.0), rng.randint(0, 3))


def flowers(seed, count):
    rng = random.Random(seed)
    # A third of the flowers all ints, a third all floats, a third mixed.
    styles = [range(4), range(4, 9), range(9)]
    for _ in range(count):
        kinds = styles[rng.randrange(3)]
        flower = Iris(*(measurement(rng, kinds) for _ in range(4)), rng.choice(SPECIES))
        yield pickle.dumps(flower, protocol=rng.randrange(6))


def main():
    seed_dir, seed, count, *ports = sys.argv[1:]
    payloads = list(flowers(int(seed), int(count)))
    for port in ports:
        connection = Client(('127.0.0.1', int(port)), authkey=PASSWORD)
        for payload in payloads:
            connection.send(payload)
        connection.send('close')
        connection.close()


main()
