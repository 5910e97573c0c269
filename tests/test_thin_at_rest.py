"""Scoring and optimization compute in a child process (`nodes/child.py`) and stay thin at
rest: the node never loads pandas, pandas-ta, empyrical, PyPortfolioOpt or cvxpy; its child
serves consecutive runs, ends after the idle time, and one killed in a run is a clear
rejection, the next run getting a new child with the same answer."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from array import array
from typing import Any

import psutil
import pytest

from edge import RemoteError
from edge.settings import REPO_ROOT
from nodes import history
from nodes.optimization import model as optimization
from nodes.scoring import model as scoring
from nodes.universe import bundle
from nodes.universe.node import node as universe
from schemas import catalog as t
from schemas.optimization import Optimize, Targets
from schemas.scoring import Rescore, Scores

HEAVY = ("pandas", "pandas_ta", "empyrical", "pypfopt", "cvxpy", "numpy", "scipy")
SYMBOLS = ["AAPL.US", "MA.US", "XOM.US", "JPM.US", "SPY.US"]

PROBE = """
import json, sys
from array import array
from nodes import history
from nodes.child import Child
from nodes.optimization.settings import Settings
from nodes.universe import bundle

async def main():
    closes = {{s: history.Points(array("i", [d.toordinal() for d, _ in p]), array("d", [float(c) for _, c in p]))
              for s in {symbols!r} for p in [bundle.history(s)]}}
    child = Child("probe")
    scores, as_of = await child.run("nodes.scoring.job:score", closes, {symbols!r}[:-1], "SPY.US")
    targets, inputs = await child.run("nodes.optimization.job:optimize", closes, Settings(max_weight=0.5))
    child.close()
    heavy = [m for m in {heavy!r} if m in sys.modules]
    print(json.dumps({{"heavy": heavy, "as_of": str(as_of), "scores": {{s.symbol: s.score for s in scores}},
                      "weights": {{x.symbol: str(x.weight) for x in targets.targets}}, "inputs": inputs.symbols}}))

import asyncio
asyncio.run(main())
"""


def test_the_jobs_answer_as_the_models_and_the_caller_loads_no_library():
    code = PROBE.format(symbols=SYMBOLS, heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["heavy"] == []
    frame = history.frame(
        {
            s: history.Points(array("i", [d.toordinal() for d, _ in p]), array("d", [float(c) for _, c in p]))
            for s in SYMBOLS
            for p in [bundle.history(s)]
        }
    )
    direct = scoring.score_universe(frame[SYMBOLS[:-1]], frame["SPY.US"])
    assert got["scores"] == {r.symbol: r.score for r in direct} and got["as_of"] == "2024-11-29"
    weights = optimization.optimize(frame, optimization.Settings(max_weight=0.5)).weights
    assert got["weights"] == {s: str(w) for s, w in weights.items()}
    assert sorted(got["inputs"]) == sorted(SYMBOLS)


def _mapped(pid: int, name: str) -> bool:
    return any(f"/{name}/" in m.path or f"/{name}." in m.path for m in psutil.Process(pid).memory_maps())


def _children(pid: int) -> list[psutil.Process]:
    return [c for c in psutil.Process(pid).children() if c.status() != psutil.STATUS_ZOMBIE]


async def _until(check: Any, timeout: float) -> None:
    for _ in range(int(timeout * 10)):
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("timed out")


NODES = {
    "scoring": (
        t.SCORES,
        t.SCORING_RESCORE,
        Rescore(),
        "SCORING_IDLE_EXIT_S",
        lambda m: len(Scores.model_validate_json(m.payload).scores) == 20,
        lambda r: [(s.symbol, s.score) for s in r.scores],
    ),
    "optimization": (
        t.OPTIMIZATION_TARGETS,
        t.OPTIMIZATION_OPTIMIZE,
        Optimize(),
        "OPT_IDLE_EXIT_S",
        lambda m: Targets.model_validate_json(m.payload).inputs_to is not None,
        lambda r: [(x.symbol, x.weight) for x in r.targets],
    ),
}


@pytest.mark.parametrize("name", list(NODES))
async def test_the_node_stays_thin_and_its_child_comes_and_goes(name, run_node, spawn, probe, tmp_path):
    topic, command, request, idle_variable, ready, answer = NODES[name]
    published = await probe.collect(probe.topics.of(topic))
    async with run_node(universe, state_dir=tmp_path / "u"):
        node = await spawn(name, name, extra_env={idle_variable: "3"})
        await published.until(ready, timeout=90)
        first = answer(await probe.client.call(command, request, timeout=60))
        (child,) = _children(node.pid)  # the same child served the start-up run and this one
        assert "nodes.child" in " ".join(child.cmdline())
        assert not any(_mapped(node.pid, lib) for lib in HEAVY), node.output()
        assert psutil.Process(node.pid).memory_info().rss < 80e6  # ~36 MB here; its child held 140-160 MB
        await _until(lambda: not _children(node.pid), timeout=15)  # idle: the child ended

        again = answer(await probe.client.call(command, request, timeout=60))  # a new child
        assert again == first
        (child,) = _children(node.pid)
        child.send_signal(signal.SIGSTOP)  # held in the next run, then killed in it
        try:
            call = asyncio.ensure_future(probe.client.call(command, request, timeout=60))
            await asyncio.sleep(1.0)
            os.kill(child.pid, signal.SIGKILL)
            with pytest.raises(
                RemoteError, match=rf"the {name} process \(pid {child.pid}\) ended .*killed by signal 9"
            ):
                await call
        finally:
            if child.is_running():
                child.kill()
        assert answer(await probe.client.call(command, request, timeout=60)) == first
        assert node.proc.poll() is None
