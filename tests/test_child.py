"""A node's child process (`nodes/child.py`): kept across consecutive calls, gone after
its idle time, a child killed in a call is a clear error and the next call gets a new one;
exceptions cross without the library that raised them."""

from __future__ import annotations

import asyncio
import os
import signal

import psutil
import pytest

from nodes.child import Child, ChildDied
from nodes.history import NotInUniverse


def gone(pid: int) -> bool:
    """Ended and reaped: no process, not even a zombie."""
    return not psutil.pid_exists(pid)


async def test_one_child_serves_consecutive_calls_and_ends_when_idle():
    child = Child("test", idle_s=1.0)
    try:
        first = await child.run("tests.jobs:pid")
        await asyncio.sleep(0.3)
        assert await child.run("tests.jobs:pid") == first == child.pid  # not respawned between calls
        assert psutil.Process(first).ppid() == os.getpid()
        for _ in range(50):
            if child.pid is None and gone(first):
                break
            await asyncio.sleep(0.1)
        assert child.pid is None and gone(first)
        again = await child.run("tests.jobs:pid")
        assert again != first
    finally:
        child.close()
    assert gone(again)


async def test_an_exception_crosses_as_ours_or_as_its_builtin_kind():
    child = Child("test")
    try:
        with pytest.raises(ValueError, match=r"pandas\.errors\.ParserError: Error tokenizing") as exc:
            await child.run("tests.jobs:fail_in_pandas")
        assert type(exc.value) is ValueError  # reading it needs no pandas
        assert any("in the child process" in n for n in exc.value.__notes__)
        with pytest.raises(NotInUniverse, match=r"NOPE\.US"):
            await child.run("tests.jobs:fail_in_ours")
        with pytest.raises(ModuleNotFoundError, match=r"tests\.nope"):
            await child.run("tests.nope:pid")
        assert await child.run("tests.jobs:pid") == child.pid  # the same child served each call
    finally:
        child.close()


async def test_a_child_killed_in_a_call_fails_that_call_and_the_next_gets_a_new_one():
    child = Child("test")
    try:
        first = await child.run("tests.jobs:pid")
        call = asyncio.ensure_future(child.run("tests.jobs:nap", 30))
        await asyncio.sleep(0.5)
        os.kill(first, signal.SIGKILL)
        with pytest.raises(
            ChildDied, match=r"the test process \(pid \d+\) ended during tests.jobs:nap: killed by signal 9"
        ):
            await asyncio.wait_for(call, 10)
        second = await child.run("tests.jobs:pid")
        assert second != first and gone(first)
    finally:
        child.close()


async def test_closing_ends_a_busy_child():
    child = Child("test")
    call = asyncio.ensure_future(child.run("tests.jobs:nap", 30))
    for _ in range(50):
        if child.pid is not None:
            break
        await asyncio.sleep(0.1)
    pid = child.pid
    assert pid is not None
    child.close()
    with pytest.raises(ChildDied):
        await asyncio.wait_for(call, 10)
    assert gone(pid)


async def test_a_warmed_child_serves_the_first_call():
    child = Child("test", idle_s=5.0)
    try:
        await child.warm("tests.jobs", wait=10.0)
        warmed = child.pid
        assert warmed is not None and await child.run("tests.jobs:pid") == warmed
    finally:
        child.close()
