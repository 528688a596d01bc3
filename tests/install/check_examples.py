#!/usr/bin/env python3
"""Runs the examples (built against the installed package) on every IO model and checks what
they answer, as a client would see it:

  upper_server     lines come back uppercased, a line split across sends too
  deferred_server  pipelined "N text" lines come back in request order though later ones are
                   ready first; a bad line gets an error in its place
  chat_server      a line from one client reaches every other client, not its sender; with
                   --threads 2 where the model takes it; a client that stops reading is let go
                   and the others still chat (blocking is exempt: one client at a time)

Each server is started on 127.0.0.1 port 0, its `listening on` line read from stderr, and
stopped with SIGTERM: it must exit 0 within a few seconds. Usage:
  check_examples.py EXAMPLES_DIR MODEL...
"""
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

TIMEOUT = 5.0
MULTI_THREADED = {"select", "poll", "epoll", "epoll-et", "uring"}


class Server:
    def __init__(self, path, model, threads=1):
        args = [path, "--model", model, "--host", "127.0.0.1", "--port", "0"]
        if threads > 1:
            args += ["--threads", str(threads)]
        self.proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
        self.log = []
        deadline = time.time() + TIMEOUT
        self.port = None
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.log.append(line)
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        if self.port is None:
            self.proc.kill()
            raise AssertionError(f"{path} --model {model} did not start: {''.join(self.log)}")
        # Keep reading the log, so the server never blocks on a full pipe.
        self.reader = threading.Thread(target=self._read_log, daemon=True)
        self.reader.start()

    def _read_log(self):
        for line in self.proc.stderr:
            self.log.append(line)

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("server did not stop within 10 s of SIGTERM")
        self.reader.join(timeout=5)
        if self.proc.returncode != 0:
            raise AssertionError(f"server exited {self.proc.returncode}: {''.join(self.log)[-2000:]}")


def recv_exactly(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def expect(what, got, want):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


def check_upper(path, model):
    server = Server(path, model)
    try:
        with server.connect() as c:
            c.sendall(b"hello\nwor")
            time.sleep(0.05)
            c.sendall(b"ld\r\nMiXeD 123\n")
            want = b"HELLO\r\nWORLD\r\nMIXED 123\r\n"
            expect("upper_server replies", recv_exactly(c, len(want)), want)
    finally:
        server.stop()


def check_deferred(path, model):
    server = Server(path, model)
    try:
        with server.connect() as c:
            # Later lines are ready first; the answers must still come in request order.
            c.sendall(b"400 first\n200 second\n0 third\nnonsense\n100 fifth\n")
            want = (b"first\r\nsecond\r\nthird\r\n"
                    b"ERROR expected \"N text\", N in milliseconds up to 60000\r\nfifth\r\n")
            start = time.time()
            expect("deferred_server replies", recv_exactly(c, len(want)), want)
            if time.time() - start < 0.35:
                raise AssertionError("deferred_server answered before the first delay passed")
    finally:
        server.stop()


def check_chat(path, model):
    threads = 2 if model in MULTI_THREADED else 1
    server = Server(path, model, threads)
    try:
        clients = [server.connect() for _ in range(3)]
        time.sleep(0.2)  # every client is in the room before anyone speaks
        clients[0].sendall(b"hi from zero\n")
        for i in (1, 2):
            expect(f"chat client {i} hears client 0", recv_exactly(clients[i], 14), b"hi from zero\r\n")
        clients[2].sendall(b"two here\n")
        for i in (0, 1):
            expect(f"chat client {i} hears client 2", recv_exactly(clients[i], 10), b"two here\r\n")
        # The sender hears nothing of its own.
        clients[0].settimeout(0.2)
        try:
            extra = clients[0].recv(100)
            raise AssertionError(f"chat client 0 heard {extra!r}, which was its own")
        except socket.timeout:
            pass
        clients[0].settimeout(TIMEOUT)
        # A client that never reads: the others flood the room until it is let go, and they
        # keep chatting meanwhile.
        silent = server.connect()
        silent.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        time.sleep(0.2)
        # 8 MiB: over the 1 MiB a reader may fall behind, plus what the kernel buffers for it
        # (the server's send buffer grows up to tcp_wmem's 4 MiB).
        line = b"x" * 16383 + b"\n"
        for _ in range(512):
            clients[0].sendall(line)
            recv_exactly(clients[1], len(line) + 1)
            recv_exactly(clients[2], len(line) + 1)
        deadline = time.time() + TIMEOUT
        while time.time() < deadline and not any("fell behind" in l for l in server.log):
            time.sleep(0.05)
        clients[1].sendall(b"still here\n")
        expect("chat goes on after a slow reader", recv_exactly(clients[2], 12), b"still here\r\n")
        for c in clients + [silent]:
            c.close()
    finally:
        server.stop()
    if not any("fell behind" in l or "closed through its handle" in l for l in server.log):
        raise AssertionError("the client that did not read was not disconnected")


def main():
    examples_dir, models = sys.argv[1], sys.argv[2:]
    failures = 0
    for model in models:
        checks = [("upper_server", check_upper), ("deferred_server", check_deferred)]
        if model != "blocking":
            checks.append(("chat_server", check_chat))
        for name, check in checks:
            try:
                check(os.path.join(examples_dir, name), model)
                print(f"ok   {name} --model {model}")
            except Exception as e:  # report every failure, then fail
                failures += 1
                print(f"FAIL {name} --model {model}: {e}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
