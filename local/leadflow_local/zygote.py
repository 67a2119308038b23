"""The process that forks the stack's workers: the five handlers imported once, a worker forked
from it in milliseconds with its imports done.

A fresh interpreter (`python -m leadflow_local.zygote FD`) started by the stack: it never holds
the stack's threads, sockets or memory, so a worker starts clean; it stays single-threaded, so
forking it is safe. Over its control socket (FD) the stack sends a request — function, its
environment, timeout, setup — and the worker's end of a new socket pair; the zygote forks,
the child becomes the worker (leadflow_local.worker.serve) and the zygote answers with its pid.

Exited workers are reaped by the kernel (SIGCHLD ignored); the stack learns of a worker's death
from its socket. The zygote ends when its control socket closes: the stack stopped or died.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from multiprocessing import reduction
from multiprocessing.connection import Connection
from typing import Any

START_TIMEOUT_S = 30


def send_frame(sock: socket.socket, value: dict) -> None:
    data = json.dumps(value).encode()
    sock.sendall(struct.pack("!I", len(data)) + data)


def recv_frame(sock: socket.socket) -> dict:
    (size,) = struct.unpack("!I", _recv_exact(sock, 4))
    return dict(json.loads(_recv_exact(sock, size)))


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(left)  # exactly what the frame holds: the fd that follows stays unread
        if not chunk:
            raise EOFError("control socket closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class Zygote:
    """The stack's side: start the zygote, ask it for workers."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.lock = threading.Lock()  # one request and its answer at a time
        self.ready = False

    def start(self, env: dict[str, str]) -> None:
        """Start importing; `spawn` waits until the zygote is ready (the stack starts the emulator meanwhile)."""
        ours, theirs = socket.socketpair()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "leadflow_local.zygote", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,  # stdout and stderr are the stack's: a worker's lines show there
            env=env,
        )
        theirs.close()
        self.sock = ours
        self.ready = False

    def _wait_ready(self, sock: socket.socket) -> None:
        sock.settimeout(START_TIMEOUT_S)
        try:
            recv_frame(sock)  # {"ready": true} once the handlers are imported
        except (EOFError, OSError) as exc:
            raise RuntimeError(f"the worker zygote did not start: {exc}") from None
        sock.settimeout(None)
        self.ready = True

    def spawn(self, request: dict) -> tuple[int, Connection]:
        """A new worker for `request`; its pid and the stack's end of its socket."""
        if self.sock is None:
            raise RuntimeError("the worker zygote is not running")
        ours, theirs = socket.socketpair()
        try:
            with self.lock:
                if not self.ready:
                    self._wait_ready(self.sock)
                send_frame(self.sock, request)
                reduction.sendfds(self.sock, [theirs.fileno()])
                pid = int(recv_frame(self.sock)["pid"])
        finally:
            theirs.close()  # the worker holds its own copy now
        return pid, Connection(ours.detach())

    def stop(self) -> None:
        sock, self.sock = self.sock, None
        if sock:
            sock.close()  # the zygote reads end-of-file and exits
        process, self.process = self.process, None
        if process:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --------------------------------------------------------------------------- the zygote process


def main(control_fd: int) -> None:
    # Ctrl-C reaches the whole process group: the stack decides when the zygote and workers go.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps exited workers
    from leadflow_local.functions import FUNCTION_NAMES, load_function

    for name in FUNCTION_NAMES:
        load_function(name)
    _parse_service_models()
    _load_dictionaries()
    sock = socket.socket(fileno=control_fd)
    send_frame(sock, {"ready": True})
    while True:
        try:
            request = recv_frame(sock)
            (worker_fd,) = reduction.recvfds(sock, 1)
        except (EOFError, OSError):
            return
        pid = os.fork()
        if pid == 0:
            sock.close()
            _become_worker(worker_fd, request)
        os.close(worker_fd)
        send_frame(sock, {"pid": pid})


def _parse_service_models() -> None:
    """boto3's default session keeps the service models it has read: read them here, once, and
    a worker's first clients take milliseconds instead of ~200 ms. No request is made (no socket
    to share after the fork) and no credentials are resolved (the worker's own come from its env)."""
    import boto3

    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    nowhere = {"region_name": "eu-central-1", "endpoint_url": "http://127.0.0.1:9",
               "aws_access_key_id": "-", "aws_secret_access_key": "-"}  # fmt: skip
    boto3.DEFAULT_SESSION.resource("dynamodb", **nowhere)
    for service in ("dynamodb", "sqs"):
        boto3.DEFAULT_SESSION.client(service, **nowhere)  # type: ignore[call-overload]


def _load_dictionaries() -> None:
    """The offline qualifier's morphology dictionaries (~140 ms, tens of MB): loaded here once,
    shared by every worker instead of loaded by each score worker's first message."""
    from leadflow.domain.qualify.offline import morph

    morph()


def _become_worker(fd: int, request: dict[str, Any]) -> None:
    """In the forked child: serve as the worker, and never return into the zygote's loop."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    code = 0
    try:
        from leadflow_local.worker import serve

        serve(Connection(fd), request["function"], request["env"], request["timeout_s"], request["setup"])
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    main(int(sys.argv[1]))
