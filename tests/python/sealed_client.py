"""A sealed iris client in Python, written from docs/PROTOCOL.md alone.

Usage:
    sealed_client.py [--address HOST:PORT] [--authkey KEY] [--fast-open]
                     [--flower SL,SW,PL,PW,SPECIES]... [--repeat N]
                     [--record-size BYTES] [--seed-dir DIR] [--timeout SECS]
    sealed_client.py --vectors

It sends flowers to an iris listener the way the seed's Python client does
(`connection.send(pickle.dumps(Iris(...)))` per flower, then
`connection.send('close')`), but in a sealed session: the handshake carries
the iris sealing marks and X25519 public keys, and every byte after it
travels in AES-256-GCM records under keys that need both the authkey and the
ephemeral Diffie-Hellman secret. It always requires sealing: a listener that
cannot seal (CPython, or iris with sealing off) is refused before anything
is sent. `--fast-open` sends the client's challenge on connect (section 4.5).
Without `--flower` it sends the seed's flower (5.1, 3.5, 1.4, 0.2, setosa),
whose area the listener prints as `Area: 18.13`.

`--vectors` prints the test vectors of section 6 as the fenced block that
docs/PROTOCOL.md holds, after checking the X25519 values against RFC 7748.

Exit status: 0 when every flower was sent and the listener then ended the
session without sending anything that fails (like the seed's listener, an
iris listener answers pickles with nothing, so a record it could not open
ends the session the same way, and only its log tells); 1 on a protocol error (a malformed handshake frame, a record that
does not open); 2 on a usage error; 3 when it cannot connect (or the listener
closed before its challenge); 4 when authentication failed (a different
authkey, or a man in the middle); 9 when the listener cannot seal.

Needs the `cryptography` package: python3 -m pip install 'cryptography>=42'.
"""
import argparse
import hashlib
import hmac
import os
import pickle
import socket
import struct
import sys
from pathlib import Path

try:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.asymmetric.x25519 import (
        X25519PrivateKey,
        X25519PublicKey,
    )
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
except ImportError as e:
    sys.exit(
        "error: the `cryptography` package is missing (%s); install it with: "
        "python3 -m pip install 'cryptography>=42'" % e
    )

SEED_KEY = "My voice is my password, verify me."
SEED_FLOWER = "5.1,3.5,1.4,0.2,setosa"

# Section 2: the handshake's messages.
CHALLENGE = b"#CHALLENGE#"
WELCOME = b"#WELCOME#"
FAILURE = b"#FAILURE#"
SHA256 = b"{sha256}"
NONCE_LEN = 40
HANDSHAKE_FRAME_MAX = 256

# Section 3: the sealing marks, and the one length a marked message has.
LISTENER_MARK = b"~iris:seal1:L"
CLIENT_MARK = b"~iris:seal1:C"
PIPELINE_MARK = b"~iris:pipeline"
PUBLIC_KEY_LEN = 32
MARKED_LEN = len(SHA256) + NONCE_LEN + len(LISTENER_MARK) + PUBLIC_KEY_LEN  # 93

# Section 4.3: records.
TAG_LEN = 16
RECORD_PLAINTEXT_MAX = 65536
RECORDS_PER_KEY = 2**22
KEYS_PER_DIRECTION = 2**32  # a direction never starts its 2^32-th key

# After the handshake the receiver's own bound applies (section 1): the
# iris listener's default --max-frame.
FRAME_MAX = 64 * 1024 * 1024

EXIT_PROTOCOL, EXIT_CONNECT, EXIT_AUTH, EXIT_CANNOT_SEAL = 1, 3, 4, 9


class SealError(Exception):
    """A failure of the session, with the exit status that reports it."""

    exit_status = EXIT_PROTOCOL


class ConnectFailed(SealError):
    exit_status = EXIT_CONNECT


class AuthenticationFailed(SealError):
    exit_status = EXIT_AUTH


class CannotSeal(SealError):
    exit_status = EXIT_CANNOT_SEAL


# --- Primitives (sections 1, 2, 4.1, 4.2) -----------------------------------


def u32(n):
    return struct.pack(">I", n)


def frame(payload):
    """Section 1: a length header, then the payload."""
    if len(payload) < 2**31 - 1:
        return u32(len(payload)) + payload
    return b"\xff\xff\xff\xff" + struct.pack(">Q", len(payload)) + payload


def hmac_sha256(key, data):
    return hmac.new(key, data, hashlib.sha256).digest()


def answer(authkey, challenge):
    """Section 2: the answer to a challenge message (`{sha256}` prefix,
    nonce and mark all covered)."""
    return SHA256 + hmac_sha256(authkey, challenge)


def hkdf_extract(salt, ikm):
    """RFC 5869 §2.2."""
    return hmac_sha256(salt, ikm)


def hkdf_expand(prk, info, length):
    """RFC 5869 §2.3."""
    output, block, counter = b"", b"", 1
    while len(output) < length:
        block = hmac_sha256(prk, block + info + bytes([counter]))
        output += block
        counter += 1
    return output[:length]


def expand_label(secret, label, context, length):
    """Section 4.2: HKDF-Expand-Label with the `iris1 ` label prefix."""
    full_label = b"iris1 " + label
    info = (
        struct.pack(">H", length)
        + bytes([len(full_label)])
        + full_label
        + bytes([len(context)])
        + context
    )
    return hkdf_expand(secret, info, length)


def transcript_hash(lm, cr, cm, lr):
    """Section 4.1: always in this order, whatever order the frames took."""
    return hashlib.sha256(b"".join(u32(len(m)) + m for m in (lm, cr, cm, lr))).digest()


def public_bytes(private_key):
    return private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def diffie_hellman(private_key, peer_public):
    try:
        shared = private_key.exchange(X25519PublicKey.from_public_bytes(peer_public))
    except ValueError as e:  # cryptography refuses an all-zero result itself
        raise AuthenticationFailed("the listener's X25519 public key is unusable: %s" % e)
    if shared == bytes(32):
        raise AuthenticationFailed("the listener's X25519 public key gives an all-zero secret")
    return shared


def key_schedule(authkey, shared, th):
    """Section 4.2, keeping every intermediate secret (the test vectors show
    them)."""
    early = hkdf_extract(bytes(32), authkey)
    derived = expand_label(early, b"derived", hashlib.sha256(b"").digest(), 32)
    master = hkdf_extract(derived, shared)
    return {
        "early": early,
        "derived": derived,
        "master": master,
        "c_secret": expand_label(master, b"c traffic", th, 32),
        "l_secret": expand_label(master, b"l traffic", th, 32),
    }


# --- Records (section 4.3) --------------------------------------------------


class Direction:
    """One direction's record protection: its secret, current key, IV and
    record counter. Sealing and opening use the same sequence of nonces."""

    def __init__(self, secret):
        self.secret = secret
        self.key_number = 1
        self._start_key()

    def _start_key(self):
        self.key = expand_label(self.secret, b"key", b"", 32)
        self.iv = expand_label(self.secret, b"iv", b"", 12)
        self.aead = AESGCM(self.key)
        self.seq = 0

    def _next_nonce(self):
        if self.seq == RECORDS_PER_KEY:
            # The implicit key update: no message, both sides just move on.
            if self.key_number + 1 >= KEYS_PER_DIRECTION:
                raise SealError("this direction has used all its keys; the session must end")
            self.secret = expand_label(self.secret, b"traffic upd", b"", 32)
            self.key_number += 1
            self._start_key()
        nonce = bytes(a ^ b for a, b in zip(self.iv, bytes(4) + struct.pack(">Q", self.seq)))
        self.seq += 1
        return nonce

    def seal(self, plaintext):
        """A whole record: u32(N) || ciphertext || tag, the header as AAD."""
        if len(plaintext) > RECORD_PLAINTEXT_MAX:
            raise ValueError("a record holds at most %d bytes" % RECORD_PLAINTEXT_MAX)
        header = u32(len(plaintext) + TAG_LEN)
        # The nonce first: at a key update it moves to the next key, and
        # `self.aead.encrypt(self._next_nonce(), ...)` would look up the
        # old key's method before the update.
        nonce = self._next_nonce()
        return header + self.aead.encrypt(nonce, plaintext, header)

    def open(self, header, body):
        """The plaintext of one record; raises SealError if it does not open."""
        nonce = self._next_nonce()  # first: see `seal`
        try:
            return self.aead.decrypt(nonce, body, header)
        except InvalidTag:
            raise SealError(
                "a record from the listener does not open (altered, truncated, dropped, "
                "duplicated, reordered, or from another session); the session is ended"
            ) from None


def recv_exactly(sock, n, what):
    """Exactly n bytes; b"" if the peer closed before the first of them."""
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            if data:
                raise SealError("the listener closed the connection in the middle of %s" % what)
            return b""
        data += chunk
    return bytes(data)


def read_handshake_frame(sock, what, closed=None):
    """One handshake frame, refused above 256 bytes (section 1); `closed`
    is the error for a listener that closes before it."""
    header = recv_exactly(sock, 4, what)
    if not header:
        raise closed or AuthenticationFailed(
            "the listener closed the connection instead of sending %s" % what
        )
    (length,) = struct.unpack(">I", header)
    if length > HANDSHAKE_FRAME_MAX:
        raise SealError(
            "the listener sent a %d-byte handshake frame as %s (at most %d); "
            "not a multiprocessing.connection listener?" % (length, what, HANDSHAKE_FRAME_MAX)
        )
    payload = recv_exactly(sock, length, what)
    if len(payload) < length:
        raise SealError("the listener closed the connection in the middle of %s" % what)
    return payload


class SealedConnection:
    """The application's side of a sealed session, shaped like
    multiprocessing.connection.Connection: send() pickles, send_bytes()
    sends raw frames, recv_bytes() receives them."""

    def __init__(self, sock, sending, receiving, pending=b"", record_size=RECORD_PLAINTEXT_MAX):
        self._sock = sock
        self._record_size = record_size
        self._sending = sending
        self._receiving = receiving
        # Handshake bytes not yet written (Cr and record 0), so that they
        # leave with the first data in one flight.
        self._pending = pending
        self._inner = bytearray()  # the listener's inner stream, opened

    def send(self, obj):
        self.send_bytes(pickle.dumps(obj))

    def send_bytes(self, payload):
        """One frame, in as many records as it takes (a record holds a
        piece of the inner stream, cut anywhere)."""
        data = frame(payload)
        step = self._record_size
        self.write_records(data[i : i + step] for i in range(0, len(data), step))

    def write_records(self, pieces):
        """Seals each piece of the inner stream (frames' bytes, cut anywhere;
        empty pieces too) as one record, and writes them all at once. The
        way to put records of any shape on the wire, as tests of a
        listener's record layer do."""
        self._write(b"".join(self._sending.seal(piece) for piece in pieces))

    def flush(self):
        self._write(b"")

    def _write(self, data):
        self._sock.sendall(self._pending + data)
        self._pending = b""

    def _read_record(self):
        """Opens the next record into the inner stream; False at a clean end
        (the listener closed between records)."""
        header = recv_exactly(self._sock, 4, "a record header")
        if not header:
            return False
        (n,) = struct.unpack(">I", header)
        if n == len(FAILURE) and recv_exactly(self._sock, n, "a frame") == FAILURE:
            # Fast open: the listener rejected Cr and said so in the clear.
            raise AuthenticationFailed(
                "the listener rejected our key (#FAILURE#): set --authkey to the listener's key"
            )
        if n < TAG_LEN or n > RECORD_PLAINTEXT_MAX + TAG_LEN:
            raise SealError(
                "the listener sent a record header of %d bytes (allowed: %d to %d)"
                % (n, TAG_LEN, RECORD_PLAINTEXT_MAX + TAG_LEN)
            )
        body = recv_exactly(self._sock, n, "a record")
        if len(body) < n:
            raise SealError("the listener closed the connection in the middle of a record")
        self._inner += self._receiving.open(header, body)
        return True

    def recv_bytes(self):
        """The next frame's payload from the listener, or None when it has
        closed the session cleanly."""
        while True:
            if len(self._inner) >= 4:
                (length,) = struct.unpack(">I", self._inner[:4])
                start = 4
                if length == 0xFFFFFFFF:
                    if len(self._inner) < 12:
                        length = None
                    else:
                        (length,) = struct.unpack(">Q", self._inner[4:12])
                        start = 12
                if length is not None:
                    if length > FRAME_MAX:
                        raise SealError("the listener sent a %d-byte frame" % length)
                    if len(self._inner) >= start + length:
                        payload = bytes(self._inner[start : start + length])
                        del self._inner[: start + length]
                        return payload
            if not self._read_record():
                if self._inner:
                    raise SealError("the listener closed the session in the middle of a frame")
                return None

    def close(self):
        """Flushes, then waits for the listener to end the session (as the
        seed's listener does on 'close'); any frame it sent is opened, so a
        tampered or rejected session is reported instead of passing for a
        clean end."""
        try:
            self.flush()
            self._sock.shutdown(socket.SHUT_WR)
            while self.recv_bytes() is not None:
                pass
        finally:
            self._sock.close()


# --- The handshake (sections 2, 3, 4.4, 4.5) --------------------------------


def listener_public_key(lm):
    """The listener's X25519 key from its challenge message, or CannotSeal
    saying what the listener is instead."""
    if len(lm) == MARKED_LEN and lm.startswith(SHA256) and lm[-45:-32] == LISTENER_MARK:
        return lm[-32:]
    if not lm.startswith(SHA256):
        why = "its challenge is CPython 3.11's legacy HMAC-MD5 one (a CPython listener)"
    elif lm.endswith(PIPELINE_MARK):
        why = "it is an iris listener with sealing off"
    else:
        why = "its challenge has no iris seal mark (a CPython listener?)"
    raise CannotSeal(
        "the listener cannot seal: %s; this client requires a sealed session" % why
    )


def connect(address, authkey, fast_open=False, timeout=10.0, record_size=RECORD_PLAINTEXT_MAX):
    """Runs the sealed handshake and returns the SealedConnection. Every
    connect, read and write gives up after `timeout` seconds; each frame
    sent is cut into records of at most `record_size` bytes."""
    # The ephemeral key and our challenge exist before the connection does.
    private_key = X25519PrivateKey.generate()
    cm = SHA256 + os.urandom(NONCE_LEN) + CLIENT_MARK + public_bytes(private_key)
    host, _, port = address.rpartition(":")
    try:
        sock = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    except OSError as e:
        raise ConnectFailed("cannot connect to %s: %s; is a listener running there?" % (address, e))
    try:
        return _handshake(sock, authkey, private_key, cm, fast_open, record_size)
    except BaseException:
        sock.close()
        raise


def _handshake(sock, authkey, private_key, cm, fast_open, record_size):
    if fast_open:
        sock.sendall(frame(CHALLENGE + cm))
    challenge = read_handshake_frame(
        sock,
        "its challenge",
        closed=ConnectFailed(
            "the listener closed the connection before its challenge (busy?); try again later"
        ),
    )
    if not challenge.startswith(CHALLENGE):
        raise SealError("the listener's first frame is not a challenge; not an iris listener")
    lm = challenge[len(CHALLENGE) :]
    listener_public = listener_public_key(lm)  # refuses before answering
    cr = answer(authkey, lm)

    if fast_open:
        # Section 4.5: the listener answers our challenge at once, no #WELCOME#.
        lr = read_handshake_frame(sock, "its answer to our challenge")
        if lr == FAILURE:
            raise AuthenticationFailed(
                "the listener rejected our challenge (#FAILURE#): it does not speak fast open"
            )
        flight = frame(cr)
    else:
        # Section 3's pipelining: Cr and our challenge together.
        sock.sendall(frame(cr) + frame(CHALLENGE + cm))
        verdict = read_handshake_frame(sock, "#WELCOME#")
        if verdict == FAILURE:
            raise AuthenticationFailed(
                "the listener rejected our key (#FAILURE#): set --authkey to the listener's key"
            )
        if verdict != WELCOME:
            raise SealError("the listener answered %r instead of #WELCOME#" % verdict[:32])
        lr = read_handshake_frame(sock, "its answer to our challenge")
        flight = b""
    if not hmac.compare_digest(lr, answer(authkey, cm)):
        # Section 2: the client's last handshake frame is #WELCOME# or
        # #FAILURE#; with no keys agreed, the failure goes in the clear.
        try:
            sock.sendall(frame(FAILURE))
        except OSError:
            pass  # the listener may be gone already; the failure stands
        raise AuthenticationFailed(
            "the listener's answer to our challenge is wrong: it holds a different key "
            "(set --authkey to the listener's key), or something on the path altered the handshake"
        )

    secrets = key_schedule(
        authkey, diffie_hellman(private_key, listener_public), transcript_hash(lm, cr, cm, lr)
    )
    sending = Direction(secrets["c_secret"])
    receiving = Direction(secrets["l_secret"])
    # Section 4.4: our #WELCOME# travels sealed, as record 0, confirming the keys.
    flight += sending.seal(frame(WELCOME))
    return SealedConnection(sock, sending, receiving, pending=flight, record_size=record_size)


# --- Test vectors (section 6) -----------------------------------------------

RFC7748_ALICE_PRIVATE = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
RFC7748_ALICE_PUBLIC = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
RFC7748_BOB_PRIVATE = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
RFC7748_BOB_PUBLIC = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
RFC7748_SHARED = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"


def vectors():
    """Section 6's vectors, as `name = hex` lines."""
    authkey = SEED_KEY.encode()
    listener_key = X25519PrivateKey.from_private_bytes(bytes.fromhex(RFC7748_ALICE_PRIVATE))
    client_key = X25519PrivateKey.from_private_bytes(bytes.fromhex(RFC7748_BOB_PRIVATE))
    lpub, cpub = public_bytes(listener_key), public_bytes(client_key)
    assert lpub.hex() == RFC7748_ALICE_PUBLIC, "Alice's public key differs from RFC 7748"
    assert cpub.hex() == RFC7748_BOB_PUBLIC, "Bob's public key differs from RFC 7748"
    shared = diffie_hellman(client_key, lpub)
    assert shared == diffie_hellman(listener_key, cpub)
    assert shared.hex() == RFC7748_SHARED, "the shared secret differs from RFC 7748"

    lm = SHA256 + bytes(range(0x00, 0x28)) + LISTENER_MARK + lpub
    cm = SHA256 + bytes(range(0x40, 0x68)) + CLIENT_MARK + cpub
    assert len(lm) == len(cm) == MARKED_LEN
    cr, lr = answer(authkey, lm), answer(authkey, cm)
    th = transcript_hash(lm, cr, cm, lr)
    s = key_schedule(authkey, shared, th)
    client, listener = Direction(s["c_secret"]), Direction(s["l_secret"])
    client_keys = (client.key, client.iv)
    records = [client.seal(frame(WELCOME)), client.seal(frame(b"hello"))]
    listener_record = listener.seal(frame(b"world"))

    # The records open on the other side, in order, and the update is the
    # secret a direction moves to after 2^22 records.
    opener = Direction(s["c_secret"])
    assert [opener.open(r[:4], r[4:]) for r in records] == [frame(WELCOME), frame(b"hello")]
    updated = expand_label(s["c_secret"], b"traffic upd", b"", 32)
    mover = Direction(s["c_secret"])
    mover.seq = RECORDS_PER_KEY
    mover._next_nonce()
    assert mover.secret == updated and mover.seq == 1

    lines = [
        ("Lm", lm),
        ("Cm", cm),
        ("Cr", cr),
        ("Lr", lr),
        ("TH", th),
        ("shared", shared),
        ("early", s["early"]),
        ("derived", s["derived"]),
        ("master", s["master"]),
        ("c_secret", s["c_secret"]),
        ("l_secret", s["l_secret"]),
        ("client key", client_keys[0]),
        ("client iv", client_keys[1]),
        ("listener key", listener.key),
        ("listener iv", listener.iv),
        ("client record 0", records[0]),
        ("client record 1", records[1]),
        ("listener record 0", listener_record),
        ("c_secret next", updated),
    ]
    return ["%s = %s" % (name, value.hex()) for name, value in lines]


def vectors_block():
    """The fenced block docs/PROTOCOL.md holds."""
    return "```text\n" + "\n".join(vectors()) + "\n```\n"


# --- Command line -----------------------------------------------------------


def parse_address(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError("an address is HOST:PORT or [IPV6]:PORT: %r" % text)
    return text


def parse_flower(text, iris_class):
    parts = text.split(",")
    if len(parts) != 5:
        raise argparse.ArgumentTypeError("a flower is SL,SW,PL,PW,SPECIES: %r" % text)
    try:
        measurements = [float(part) for part in parts[:4]]
    except ValueError as e:
        raise argparse.ArgumentTypeError("a flower is SL,SW,PL,PW,SPECIES: %s" % e)
    return iris_class(*measurements, parts[4])


def main():
    parser = argparse.ArgumentParser(
        description="Send the seed's flowers to an iris listener in a sealed session."
    )
    parser.add_argument(
        "--address", default="localhost:6000", type=parse_address, help="HOST:PORT"
    )
    parser.add_argument(
        "--authkey", default=SEED_KEY, help="the shared key (default: the seed's)"
    )
    parser.add_argument(
        "--fast-open", action="store_true", help="send our challenge on connect"
    )
    parser.add_argument(
        "--flower",
        action="append",
        metavar="SL,SW,PL,PW,SPECIES",
        help="a flower to send (repeatable; default: the seed's)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, metavar="N", help="send the flowers N times"
    )
    parser.add_argument(
        "--record-size",
        type=int,
        default=RECORD_PLAINTEXT_MAX,
        metavar="BYTES",
        help="cut each frame into records of at most this many bytes (1 to 65536; "
        "default 65536), to exercise a listener's reassembly",
    )
    parser.add_argument(
        "--seed-dir",
        default=str(Path(__file__).resolve().parent.parent / "seed"),
        help="the directory of the seed's iris.py, whose Iris class is pickled",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECS",
        help="give up on a connect, read or write after this long (default: 10)",
    )
    parser.add_argument(
        "--vectors", action="store_true", help="print section 6's test vectors and exit"
    )
    args = parser.parse_args()
    if not 1 <= args.record_size <= RECORD_PLAINTEXT_MAX:
        parser.error("--record-size must be 1 to %d" % RECORD_PLAINTEXT_MAX)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.vectors:
        sys.stdout.write(vectors_block())
        return 0

    sys.path.insert(0, args.seed_dir)
    try:
        from iris import Iris  # the seed's dataclass, so the pickles name iris.Iris
    except ImportError as e:
        parser.error("cannot import the seed's Iris class from %s: %s" % (args.seed_dir, e))
    try:
        flowers = [parse_flower(text, Iris) for text in args.flower or [SEED_FLOWER]] * args.repeat
    except argparse.ArgumentTypeError as e:
        parser.error(str(e))

    try:
        connection = connect(
            args.address,
            args.authkey.encode(),
            fast_open=args.fast_open,
            timeout=args.timeout,
            record_size=args.record_size,
        )
        for flower in flowers:
            connection.send(pickle.dumps(flower))  # the seed client's double pickling
        connection.send("close")
        connection.close()
    except SealError as e:
        print("error: %s" % e, file=sys.stderr)
        return e.exit_status
    except (ConnectionResetError, BrokenPipeError) as e:
        print(
            "error: the listener at %s closed the session while we were sending (%s); "
            "it refused something we sent, and its log says what" % (args.address, e),
            file=sys.stderr,
        )
        return EXIT_PROTOCOL
    except OSError as e:
        print("error: the connection to %s failed: %s" % (args.address, e), file=sys.stderr)
        return EXIT_PROTOCOL
    print(
        "sent %d flower%s to %s in a sealed session%s"
        % (
            len(flowers),
            "" if len(flowers) == 1 else "s",
            args.address,
            " (fast open)" if args.fast_open else "",
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
