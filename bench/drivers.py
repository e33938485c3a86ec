"""The CPython side of `cargo xtask bench`'s handshake, ping and bulk scenarios.

Everything uses multiprocessing.connection as an application would: Listener,
Client, send/recv, send_bytes/recv_bytes. Servers listen on (HOST, 0), write
`HOST:PORT` to ADDRESS_FILE and log `listening` on stderr; clients print one
JSON object on stdout. The key comes from IRIS_AUTHKEY.

    python drivers.py handshake-server HOST ADDRESS_FILE
        accept (which authenticates) and close, forever
    python drivers.py handshake-client HOST:PORT SECONDS MAX
        waits for stdin to end (the start signal), then Client() and
        close() in a loop; prints {"count", "elapsed_ns", "latencies_ns"}
    python drivers.py echo-server HOST ADDRESS_FILE
        one connection: recv() and send() it back until the client leaves
    python drivers.py ping-client HOST:PORT COUNT WARMUP
        send('ping') / recv() round trips; prints {"latencies_ns"}
    python drivers.py bulk-server HOST ADDRESS_FILE COUNT
        one connection: recv_bytes() COUNT times, then send_bytes() the
        byte count (8 bytes, little-endian)
    python drivers.py bulk-client HOST:PORT SIZE COUNT
        send_bytes() COUNT messages of SIZE bytes, then recv_bytes() the
        count; prints {"bytes", "elapsed_ns"}
"""

import json
import os
import sys
import time
from multiprocessing.connection import Client, Listener


def key():
    return os.environb[b'IRIS_AUTHKEY']


def address(text):
    host, port = text.rsplit(':', 1)
    return host, int(port)


def listen(host, address_file):
    # A backlog of 1 (the default) would drop concurrent clients' SYNs.
    listener = Listener((host, 0), authkey=key(), backlog=1024)
    temporary = f'{address_file}.tmp'
    with open(temporary, 'w') as file:
        file.write(f'{host}:{listener.address[1]}\n')
    os.replace(temporary, address_file)
    print('listening', file=sys.stderr, flush=True)
    return listener


def result(value):
    print(json.dumps(value), flush=True)


def handshake_server(host, address_file):
    listener = listen(host, address_file)
    while True:
        try:
            connection = listener.accept()
        except (EOFError, OSError) as error:
            # A client that gave up mid-handshake (the run ended).
            print(f'accept failed: {error!r}', file=sys.stderr, flush=True)
            continue
        connection.close()


def handshake_client(target, seconds, most):
    target, seconds, most, password = address(target), float(seconds), int(most), key()
    sys.stdin.buffer.read()
    clock = time.perf_counter_ns
    latencies = []
    start = clock()
    budget = int(seconds * 1e9)
    while len(latencies) < most and clock() - start < budget:
        began = clock()
        connection = Client(target, authkey=password)
        latencies.append(clock() - began)
        connection.close()
    result({'count': len(latencies), 'elapsed_ns': clock() - start, 'latencies_ns': latencies})


def echo_server(host, address_file):
    listener = listen(host, address_file)
    connection = listener.accept()
    while True:
        try:
            message = connection.recv()
        except EOFError:
            break
        connection.send(message)


def ping_client(target, count, warmup):
    count, warmup = int(count), int(warmup)
    connection = Client(address(target), authkey=key())
    clock = time.perf_counter_ns
    latencies = []
    for round in range(warmup + count):
        began = clock()
        connection.send('ping')
        connection.recv()
        if round >= warmup:
            latencies.append(clock() - began)
    connection.close()
    result({'latencies_ns': latencies})


def bulk_server(host, address_file, count):
    listener = listen(host, address_file)
    connection = listener.accept()
    total = 0
    for _ in range(int(count)):
        total += len(connection.recv_bytes())
    connection.send_bytes(total.to_bytes(8, 'little'))
    connection.close()


def bulk_client(target, size, count):
    size, count = int(size), int(count)
    payload = b'\xa5' * size
    connection = Client(address(target), authkey=key())
    clock = time.perf_counter_ns
    started = clock()
    for _ in range(count):
        connection.send_bytes(payload)
    counted = int.from_bytes(connection.recv_bytes(), 'little')
    elapsed = clock() - started
    connection.close()
    if counted != size * count:
        sys.exit(f'the server counted {counted} bytes, not {size * count}')
    result({'bytes': size * count, 'elapsed_ns': elapsed})


COMMANDS = {
    'handshake-server': handshake_server,
    'handshake-client': handshake_client,
    'echo-server': echo_server,
    'ping-client': ping_client,
    'bulk-server': bulk_server,
    'bulk-client': bulk_client,
}

if __name__ == '__main__':
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(f'usage: drivers.py {"|".join(COMMANDS)} ARGS...')
    COMMANDS[sys.argv[1]](*sys.argv[2:])
