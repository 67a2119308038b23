"""Each function runs in worker processes, as Lambda runs containers.

- A worker serves one function, one invocation at a time, with that function's environment
  (template.yaml's, merged with the globals) — its own process, so a crash or a kill ends that
  worker only and five functions do not share one interpreter lock.
- Each function keeps a small warm pool: its workers start with the stack and stay warm, so
  imports and clients are paid once per worker, not per invocation.
- The function's Timeout is enforced by killing the worker. A killed or crashed worker never
  reports success: the caller gets `InvocationFailed` and a replacement worker starts.
- A handler that raises is a function error (`FunctionError`); the worker lives on, as a Lambda
  container does.

Workers are forked by the zygote (leadflow_local.zygote), which has the handlers imported, and
serve in leadflow_local.worker.
Requests and answers are JSON over a socket; each request also carries the stack's clock
variables, so a clock the stack speeds up (`leadflow demo`) is the clock every worker reads.

`setup` ("module:function") is for benches and tests: the worker imports and calls it with the
function's name before serving; if it returns a callable, that is called after each
invocation and what it returns travels back with the answer (`Invocation.extras`).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from leadflow_local.zygote import Zygote

CLOCK_VARS = ("LEADFLOW_CLOCK_SPEED", "LEADFLOW_CLOCK_ORIGIN", "LEADFLOW_CLOCK_START")
# On two cores, more workers than this only queue for the CPU; ingest answers webhooks and
# waits on the emulator most of the time, so a third one keeps the gateway's p95 down.
POOL_SIZES = {"ingest": 3, "score": 4, "route": 2, "escalate": 1, "remind": 1}
READY_TIMEOUT_S = 30


class InvocationFailed(RuntimeError):
    """The worker died or was killed during the invocation: no result, never a success."""


class InvocationTimedOut(InvocationFailed):
    pass


class FunctionError(RuntimeError):
    """The handler raised; as Lambda reports it: errorType and errorMessage."""

    def __init__(self, error_type: str, message: str):
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type


@dataclass
class Invocation:
    function: str
    result: Any
    started: float  # wall-clock epoch when the handler started
    duration_ms: float  # the handler's own time, measured in the worker
    extras: dict = field(default_factory=dict)


class Worker:
    """One worker process and the socket to it; the pool makes sure one invocation at a time."""

    def __init__(
        self, zygote: Zygote, function: str, env: dict[str, str], timeout_s: float, setup: str | None
    ):
        self.function = function
        self.timeout_s = timeout_s
        request = {"function": function, "env": env, "timeout_s": timeout_s, "setup": setup}
        self.pid, self.conn = zygote.spawn(request)
        self.pidfd: int | None = None
        with contextlib.suppress(AttributeError, OSError):  # no pidfd outside Linux: kill by pid
            self.pidfd = os.pidfd_open(self.pid)
        self.gone = False  # its socket closed: the process has exited (and may have been reaped)

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> Worker:
        """Block until the worker has loaded its handler and warmed up (its first message)."""
        try:
            if self.conn.poll(timeout_s) and json.loads(self.conn.recv_bytes()).get("ready"):
                return self
        except (EOFError, OSError):
            self.gone = True
        self.kill()
        raise RuntimeError(f"a {self.function} worker did not start (see its error above)")

    @property
    def alive(self) -> bool:
        """An idle worker never writes: anything readable is the end of its socket."""
        if not self.gone and self.conn.poll(0):
            self.gone = True
        return not self.gone

    def invoke(self, event: dict) -> Invocation:
        clock = {name: os.environ.get(name) for name in CLOCK_VARS}
        try:
            self.conn.send_bytes(json.dumps({"event": event, "clock": clock}).encode())
        except OSError as exc:
            self.kill()
            raise InvocationFailed(f"{self.function} worker is gone ({exc})") from None
        if not self.conn.poll(self.timeout_s):
            self.kill()
            raise InvocationTimedOut(f"{self.function}: task timed out after {self.timeout_s:.2f} seconds")
        try:
            answer = json.loads(self.conn.recv_bytes())
        except (EOFError, OSError):
            self.gone = True
            self.kill()
            raise InvocationFailed(
                f"{self.function}: worker {self.pid} exited during the invocation"
            ) from None
        if "error" in answer:
            raise FunctionError(answer["error"]["type"], answer["error"]["message"])
        return Invocation(self.function, answer["result"], answer["started"], answer["duration_ms"],
                          answer.get("extras") or {})  # fmt: skip

    def kill(self) -> None:
        """SIGKILL, as Lambda ends a timed-out container; never signals a pid that may be reused."""
        if not self.gone:
            with contextlib.suppress(ProcessLookupError):
                if self.pidfd is not None:
                    signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
                else:
                    os.kill(self.pid, signal.SIGKILL)
            self.gone = True
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        self.conn.close()


class FunctionPool:
    """A function's warm workers: at most `size` invocations at once, each in its own worker."""

    def __init__(self, zygote: Zygote, function: str, size: int, env: dict[str, str], timeout_s: float,
                 setup: str | None):  # fmt: skip
        self.zygote = zygote
        self.function, self.size, self.env, self.timeout_s, self.setup = function, size, env, timeout_s, setup
        self.idle: queue.LifoQueue[Worker] = queue.LifoQueue()  # the warmest worker first
        self.busy: set[Worker] = set()
        self.starting: list[Worker] = []
        self.lock = threading.Lock()
        self.closed = False

    def start(self) -> None:
        """Fork the workers; they warm up side by side (with other pools') until `wait_ready`."""
        self.starting = [self._new_worker() for _ in range(self.size)]

    def wait_ready(self) -> None:
        for worker in self.starting:
            self.idle.put(worker.wait_ready())
        self.starting = []

    def _new_worker(self) -> Worker:
        return Worker(self.zygote, self.function, self.env, self.timeout_s, self.setup)

    def invoke(self, event: dict) -> Invocation:
        worker = self._take()
        healthy = False
        try:
            invocation = worker.invoke(event)
            healthy = True
            return invocation
        except FunctionError:
            healthy = True  # the handler raised; its worker is fine, as a Lambda container is
            raise
        finally:
            self._give_back(worker, healthy)

    def _take(self) -> Worker:
        while True:
            try:
                worker = self.idle.get(timeout=0.5)  # waits while all `size` workers are busy
            except queue.Empty:
                worker = None
            with self.lock:
                if self.closed:
                    if worker:
                        worker.kill()
                    raise InvocationFailed(f"{self.function}: the stack is stopping")
                if worker is None:
                    continue
                if worker.alive:
                    self.busy.add(worker)
                    return worker
            self._replace(worker)  # died while idle (killed from outside): never handed an event

    def _give_back(self, worker: Worker, healthy: bool) -> None:
        with self.lock:
            self.busy.discard(worker)
            closed = self.closed
        if closed:
            worker.kill()
        elif healthy:
            self.idle.put(worker)
        else:
            self._replace(worker)

    def _replace(self, dead: Worker) -> None:
        """A replacement joins the pool in the background: the failed invocation answers at once."""
        dead.kill()
        _say(f"{dead.function} worker {dead.pid} lost; starting a new one")

        def start() -> None:
            worker = None
            while worker is None and not self.closed:
                try:
                    worker = self._new_worker().wait_ready()
                except Exception as exc:
                    _say(f"could not start a {self.function} worker: {exc}")
                    time.sleep(1)
            with self.lock:
                closed = self.closed
            if worker is not None and closed:
                worker.kill()
            elif worker is not None:
                self.idle.put(worker)

        threading.Thread(target=start, name=f"respawn-{self.function}", daemon=True).start()

    def stop(self) -> None:
        with self.lock:
            self.closed = True
            workers = [*self.busy, *self.starting]
        while True:
            try:
                workers.append(self.idle.get_nowait())
            except queue.Empty:
                break
        for worker in workers:
            worker.kill()  # a busy one's caller gets InvocationFailed

    def pids(self) -> list[int]:
        with self.lock:
            workers = [*self.busy, *list(self.idle.queue)]
        return [w.pid for w in workers]


def _say(line: str) -> None:
    print(f"leadflow up: {line}", file=sys.stderr, flush=True)
