"""A child process for a node's heavy work, so that the node stays thin at rest.

pandas with pandas-ta and empyrical (scoring), PyPortfolioOpt with cvxpy (optimisation),
yfinance or tradernet-sdk (a price sync) cost a node 50 to 150 MB that it would keep
between runs a day apart. The node calls `await child.run("package.module:function",
*args)`; the child, a fresh interpreter (spawned, not forked: a node has threads), imports
the module, runs the function and sends its result back. The first call starts it; it is
kept while calls come (a replay's, every few seconds, reuse one child) and ends `idle_s`
after the last one.

Arguments and results travel as pickles over the child's stdin and stdout. Send plain data
(numbers, lists, arrays, pydantic models): a DataFrame or a numpy number in a result would
import pandas or numpy into the node to read it. An exception the function raises is
raised again in the node; one of a library's own classes arrives as its nearest built-in
base (a pandas `ValueError` as `ValueError`, its class named in the message), so that
reading it imports nothing. A child that dies in a call (killed, out of memory) raises
`ChildDied` there, and the next call starts a new child.

Not multiprocessing: its spawned child leaves a resource tracker (an interpreter of 14 MB)
beside the node for good, and its pool a thread.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import importlib
import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
import traceback
from typing import IO, Any

log = logging.getLogger(__name__)
HEADER = struct.Struct("<Q")  # each pickle goes with its length
WARM_WAIT_S = 5.0  # how long a starting node waits for its child to load (`Child.warm`)
START = "from nodes.child import serve; serve()"


class ChildDied(RuntimeError):
    """The child ended during a call (killed, out of memory, crashed): the call's work is lost."""


class Child:
    """One child process for `run` calls, one call at a time."""

    def __init__(self, name: str, idle_s: float = 60.0) -> None:
        self.name = name  # what the child does, for messages
        self.idle_s = idle_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()  # one call at a time, and no retirement during one
        self._calls = 0
        self._timer: asyncio.TimerHandle | None = None
        self._background: set[asyncio.Future[Any]] = set()  # `soon`'s calls, until done

    @property
    def pid(self) -> int | None:
        """The running child's pid, if one runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    async def run(self, target: str, *args: Any) -> Any:
        """`module:function(*args)` in the child (started if none runs); its result, or its exception."""
        loop = asyncio.get_running_loop()
        if self._timer is not None:
            self._timer.cancel()
        self._calls += 1
        try:
            return await loop.run_in_executor(None, self._call, target, args)
        finally:
            self._calls -= 1
            if not self._calls:
                self._timer = loop.call_later(self.idle_s, self._retire)

    async def warm(self, module: str, wait: float = WARM_WAIT_S) -> None:
        """Start the child and import `module` in it, waiting for that up to `wait` seconds
        (a node starting: its first run, which comes at once, then does not wait for pandas
        to load, and a replay's first step neither); it goes on in the background after
        that, and the child ends as when idle. A failure is logged (the first run meets it)."""
        await asyncio.wait({self.soon("nodes.child:load", module)}, timeout=wait)

    def soon(self, target: str, *args: Any) -> asyncio.Future[Any]:
        """`run` in the background, its result dropped (a failure is logged)."""
        call = asyncio.ensure_future(self.run(target, *args))
        self._background.add(call)
        call.add_done_callback(self._background.discard)
        call.add_done_callback(_log_failure)
        return call

    def close(self) -> None:
        """End the child now: as when idle, or killed if a call is in flight (it raises ChildDied)."""
        if self._timer is not None:
            self._timer.cancel()
        for call in self._background:
            call.cancel()
        proc, self._proc = self._proc, None
        if proc is not None:
            if self._calls:
                proc.kill()
            _end(proc)

    def _call(self, target: str, args: tuple[Any, ...]) -> Any:
        with self._lock:
            proc = self._proc if self._proc is not None and self._proc.poll() is None else self._start()
            assert proc.stdin is not None and proc.stdout is not None
            try:
                _send(proc.stdin, (target, args))
                answer = _receive(proc.stdout)
            except OSError:  # the pipe broke: the child is gone
                answer = None
            if answer is None:
                if self._proc is proc:
                    self._proc = None
                raise ChildDied(f"the {self.name} process (pid {proc.pid}) ended during {target}: {_how(proc)}")
        ok, value = pickle.loads(answer)
        if ok:
            return value
        raise value

    def _start(self) -> subprocess.Popen[bytes]:
        self._proc = subprocess.Popen([sys.executable, "-c", START], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        return self._proc

    def _retire(self) -> None:
        """Idle for `idle_s`: the child ends (its stdin closed), unless a call began meanwhile."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            proc, self._proc = self._proc, None
        finally:
            self._lock.release()
        if proc is not None:
            threading.Thread(target=_end, args=(proc,), name=f"{self.name}-end", daemon=True).start()


def _log_failure(done: asyncio.Future[Any]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.warning("a call in the background failed: %s", done.exception())


def _end(proc: subprocess.Popen[bytes]) -> None:
    """Close an idle child's stdin (it exits at once); kill it if it does not."""
    try:
        _reap(proc, timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        _reap(proc)


def _reap(proc: subprocess.Popen[bytes], timeout: float | None = None) -> None:
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()
    proc.wait(timeout)


def _how(proc: subprocess.Popen[bytes]) -> str:
    try:
        code = proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
    if code < 0:
        return f"killed by signal {-code} ({signal.Signals(-code).name})"
    return f"exited with code {code}"


def _send(pipe: IO[bytes], value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    pipe.write(HEADER.pack(len(data)) + data)
    pipe.flush()


def _receive(pipe: IO[bytes]) -> bytes | None:
    """One pickle's bytes, or None at the end of the stream (the other side is gone)."""
    head = pipe.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    (size,) = HEADER.unpack(head)
    data = pipe.read(size)
    return data if len(data) == size else None


# -- in the child --------------------------------------------------------------------------


def load(module: str) -> None:
    """Import a module (`Child.warm`)."""
    importlib.import_module(module)


def serve() -> None:
    """The child's loop: one call after another until the node closes the pipe (or dies)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the node, which ends the child
    calls = sys.stdin.buffer
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a library's print goes to the node's log, not into the answers
    while (request := _receive(calls)) is not None:
        try:
            target, args = pickle.loads(request)
            module, _, function = target.partition(":")
            answer: tuple[bool, Any] = (True, getattr(importlib.import_module(module), function)(*args))
            data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            data = pickle.dumps((False, _portable(exc)), protocol=pickle.HIGHEST_PROTOCOL)
        answers.write(HEADER.pack(len(data)) + data)
        answers.flush()
    answers.close()
    os._exit(0)  # nothing to tear down: skip the interpreter's slow exit with pandas loaded


_OURS = ("builtins", "nodes", "schemas", "edge", "dashboard", "replay")


def _portable(exc: Exception) -> Exception:
    """The exception as the node may read it without importing a library: ours and the
    built-in ones as they are, a library's as its nearest built-in base."""
    where = "".join(traceback.format_exception(exc)).rstrip()
    if type(exc).__module__.split(".")[0] in _OURS:
        try:
            exc.add_note(f"in the child process:\n{where}")
            pickle.loads(pickle.dumps(exc))
            return exc
        except Exception:
            pass
    base = next(c for c in type(exc).__mro__ if c.__module__ == "builtins" and issubclass(c, Exception))
    if base is Exception or getattr(builtins, base.__name__, None) is not base:
        base = RuntimeError
    try:
        out = base(f"{type(exc).__module__}.{type(exc).__name__}: {exc}")
    except Exception:
        out = RuntimeError(f"{type(exc).__module__}.{type(exc).__name__}: {exc}")
    out.add_note(f"in the child process:\n{where}")
    return out
