"""The runtime dependencies are complete: the project installed as a board installs it (its
dependencies and the dashboard's extra, none of the dev tools) into a clean virtual
environment imports every node and what the nodes import only when used, and runs the
heavy work of their child processes (scoring, optimisation, the dashboard's statistics).

A fresh board's optimization node crashed on `packaging`, which PyPortfolioOpt 1.6's
scikit-base imports without declaring it: the dev tools brought it into every test's
environment. pip's cache makes the install take about 30 s (`--no-compile`: the modules
a node imports are compiled when it imports them)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge.settings import REPO_ROOT

PACKAGES = ("edge", "schemas", "nodes", "dashboard", "replay")  # pyproject's [tool.setuptools.packages.find]

PROBE = """
import asyncio, importlib, json, pkgutil, sys
from array import array
from pathlib import Path

import nodes
from edge import lean
from dashboard.node import UNUSED

lean.defer(*UNUSED)
modules = [f"nodes.{m.name}.node" for m in pkgutil.iter_modules(nodes.__path__)
           if m.ispkg and importlib.util.find_spec(f"nodes.{m.name}.node") is not None]
modules += ["dashboard.node", "dashboard.app", "dashboard.pages"]
# what nodes import only when used: a network provider, the live broker, the evaluator's pool
modules += ["yfinance", "curl_cffi", "tradernet", "multiprocess", "empyrical", "scipy.optimize"]
for name in modules:
    importlib.import_module(name)

from datetime import date, timedelta
from nodes import history
from nodes.child import Child
from nodes.optimization.settings import Settings
from nodes.universe import bundle
from dashboard import figures
from dashboard.statistics import STATISTICIAN

def points(symbol):
    closes = bundle.history(symbol)[-800:]
    return history.Points(array("i", [d.toordinal() for d, _ in closes]), array("d", [float(c) for _, c in closes]))

symbols = ["AAPL.US", "MA.US", "XOM.US", "SPY.US"]
closes = {s: points(s) for s in symbols}

async def main():
    child = Child("probe")
    try:
        scores, as_of = await child.run("nodes.scoring.job:score", closes, symbols[:-1], "SPY.US")
        targets, inputs = await child.run("nodes.optimization.job:optimize", closes, Settings(max_weight=0.5))
    finally:
        child.close()
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(400)]
    stats = await STATISTICIAN.of(figures.Series(days, [100.0 + i % 7 for i in range(400)], [100.0] + [0.0] * 399))
    return scores, as_of, targets, stats

scores, as_of, targets, stats = asyncio.run(main())
print(json.dumps({"modules": len(modules), "scored": [s.status for s in scores], "as_of": str(as_of),
                  "weights": str(sum(t.weight for t in targets.targets)), "sharpe": stats.risk.sharpe,
                  "from": str(Path(nodes.__file__).parent)}))
"""


def _copy(to: Path) -> Path:
    """The project's files a wheel is built from (the build writes beside them, not here)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in PACKAGES:
        shutil.copytree(REPO_ROOT / name, to / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, to / name)
    return to


# About a minute of pip: in `make deploy-test`, beside the boards that install the project so.
@pytest.mark.deploy
@pytest.mark.timeout(600)
def test_a_clean_install_without_the_dev_tools_runs_every_node(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    source = _copy(tmp_path / "src")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-compile", f"{source}[dashboard]"],
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert install.returncode == 0, install.stderr[-4000:]
    listed = subprocess.run([python, "-m", "pip", "list"], capture_output=True, text=True)  # pip of this venv: none
    assert listed.returncode != 0, "the clean environment has no pip of its own: nothing but what was installed"
    run = tmp_path / "run"  # not the checkout: the installed package is what imports
    run.mkdir()
    out = subprocess.run(
        [python, "-c", PROBE],
        capture_output=True,
        text=True,
        cwd=run,
        timeout=300,
        env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(run), "NICEGUI_STORAGE_PATH": str(run / "ng")},
    )
    assert out.returncode == 0, out.stderr[-4000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["from"].startswith(str(venv)), got["from"]
    assert got["modules"] >= 17 and got["scored"] == ["ok"] * 3 and got["as_of"] == "2024-11-29"
    assert got["weights"] == "1.000000" and isinstance(got["sharpe"], float)
    edge = subprocess.run([venv / "bin" / "edge", "--help"], capture_output=True, text=True, cwd=run)
    assert edge.returncode == 0 and "status" in edge.stdout, edge.stderr
