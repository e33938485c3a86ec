"""The seed's client and listener code, looped over many flowers, on any port.

Usage: seed_loop.py SEED_DIR listener            (prints "READY <port>" to stderr)
       seed_loop.py SEED_DIR client PORT CSV     (sends every row, then 'close')

The bodies are the seed programs' own lines; only the address (port 0 or
PORT) and the loop over the CSV's rows are added.
"""
import csv
import pickle
import sys
from multiprocessing.connection import Client, Listener

sys.path.insert(0, sys.argv[1])
from iris import Iris  # noqa: E402  (the seed's class, from SEED_DIR)

PASSWORD = b'My voice is my password, verify me.'


def listener():
    listener = Listener(('127.0.0.1', 0), authkey=PASSWORD)
    print("READY %d" % listener.address[1], file=sys.stderr, flush=True)
    connection = listener.accept()

    while True:
        payload = connection.recv()

        if payload == 'close':
            connection.close()
            break

        flower = pickle.loads(payload)
        area = flower.total_area()
        print(f'Area: {area}')

    listener.close()


def client(port, path):
    connection = Client(('localhost', int(port)), authkey=PASSWORD)
    with open(path, newline='') as file:
        for row in csv.DictReader(file):
            flower = Iris(
                sepal_length=float(row['sepal_length']),
                sepal_width=float(row['sepal_width']),
                petal_length=float(row['petal_length']),
                petal_width=float(row['petal_width']),
                species=row['species'],
            )
            payload = pickle.dumps(flower)
            connection.send(payload)
    connection.send('close')
    connection.close()


if sys.argv[2] == 'listener':
    listener()
else:
    client(sys.argv[3], sys.argv[4])
