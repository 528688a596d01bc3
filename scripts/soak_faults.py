#!/usr/bin/env python3
"""Fault injector for scripts/soak.sh: misbehaving clients against one iomux server (line
protocol), in rounds, until a deadline. After every round a probe client checks the server
still answers correctly. Prints one JSON object with the counts. Talks to 127.0.0.1 only."""
import json
import socket
import struct
import sys
import time

REPLY = b"----ok----Request accepted\r\n"


def connect(port, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def probe(port):
    """A well-behaved client: 5 pipelined requests, every reply byte checked."""
    with connect(port) as s:
        s.sendall(b"probe\n" * 5)
        return recv_exact(s, 5 * len(REPLY)) == REPLY * 5


def resets(port, n=50):
    socks = []
    for _ in range(n):
        s = connect(port)
        s.sendall(b"half a request")
        socks.append(s)
    for s in socks:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    return n


def slow_readers(port, n=3, hold=2.0):
    socks = []
    for _ in range(n):
        s = connect(port, timeout=0.5)
        sent = 0
        try:
            while sent < 8 << 20:
                sent += s.send(b"x" * 65535 + b"\n")
        except (socket.timeout, BlockingIOError):
            pass
        socks.append(s)
    time.sleep(hold)
    for s in socks:
        s.close()
    return n


def garbage(port):
    with connect(port) as s:
        s.sendall(bytes(range(256)) + b"\xc3\x28\xff\xfe\n")
        ok = recv_exact(s, len(REPLY)) == REPLY
    with connect(port) as s:  # over-long line: an error line, then the server closes
        s.sendall(b"y" * (200 * 1024))
        try:
            data = s.recv(4096)
        except (ConnectionResetError, socket.timeout):
            data = b""
        ok = ok and (data.startswith(b"ERROR line too long") or data == b"")
    return ok


def half_close(port):
    with connect(port) as s:
        s.sendall(b"a\nb\nc\n")
        s.shutdown(socket.SHUT_WR)
        return recv_exact(s, 3 * len(REPLY)) == REPLY * 3


def main():
    port, seconds, concurrent = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3] == "1"
    deadline = time.time() + seconds
    counts = {"rounds": 0, "resets": 0, "slow_readers": 0, "garbage_inputs": 0, "half_closes": 0,
              "probes": 0, "probe_failures": 0, "wrong_replies": 0}
    while time.time() < deadline:
        counts["rounds"] += 1
        try:
            counts["resets"] += resets(port, 50 if concurrent else 5)
            if concurrent:
                counts["slow_readers"] += slow_readers(port)
            counts["garbage_inputs"] += 2
            if not garbage(port):
                counts["wrong_replies"] += 1
            counts["half_closes"] += 1
            if not half_close(port):
                counts["wrong_replies"] += 1
        except OSError as e:
            counts.setdefault("client_errors", []).append(str(e))
        counts["probes"] += 1
        try:
            if not probe(port):
                counts["probe_failures"] += 1
        except OSError:
            counts["probe_failures"] += 1
        time.sleep(0.2)
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
