"""An idle node loads only what it uses (edge/lean.py, the lazy catalog, deferred models),
and what it left unloaded still works when something asks for it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from edge.settings import REPO_ROOT

PROBE = """
import json, sys
import edge, tests.nodes.counter, nodes.scheduler.node
before = {m: m in sys.modules and type(sys.modules[m]).__name__ == "module"
          for m in ("importlib.metadata", "urllib.request", "http.client", "psutil", "numpy", "schemas.catalog",
                    "schemas.planning")}
import urllib.request
proxies = urllib.request.getproxies()  # the real module, loaded on first use
from schemas.runtime import Ping
ping = Ping.model_validate_json('{"echo": "hi"}')
print(json.dumps({"before": before, "proxies": isinstance(proxies, dict), "ping": ping.echo,
                  "real_urllib": type(sys.modules["urllib.request"]).__name__}))
"""


def test_an_idle_node_loads_only_what_it_uses():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    # the scheduler imports the catalog (its entries), but not the planner's numpy
    assert got["before"] == {
        "importlib.metadata": False,
        "urllib.request": False,
        "http.client": False,
        "psutil": False,
        "numpy": False,
        "schemas.catalog": True,
        "schemas.planning": True,
    }
    assert got["proxies"] and got["real_urllib"] == "module" and got["ping"] == "hi"


def test_pydantic_plugins_still_load_when_enabled():
    code = (
        "import os; os.environ['PYDANTIC_DISABLE_PLUGINS'] = ''\nimport edge, sys\n"
        "from pydantic.plugin._loader import get_plugins\nprint(list(get_plugins()))\n"
        "print(type(sys.modules['pydantic.plugin._loader']).__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]", "module"]  # the real loader, found no plugin


def test_every_catalog_model_builds():
    """Models are built on first use (defer_build): build them all here, so a broken one
    fails a test rather than a node in the field."""
    from schemas.catalog import CATALOG

    for entry in CATALOG.entries:
        for model in (entry.model, getattr(entry, "reply", None)):
            if model is not None:
                assert model.model_rebuild(force=True) is not False, model
                model.model_json_schema()


DASHBOARD_PROBE = """
import asyncio, json, sys
from datetime import date, timedelta
from edge import lean
from dashboard.node import UNUSED
lean.defer(*UNUSED)
import dashboard.app, dashboard.pages
from dashboard import figures
from dashboard.statistics import STATISTICIAN
loaded = lambda names: [m for m in names if type(sys.modules.get(m)).__name__ == "module"]
at_start = loaded(("numpy", "pandas", "scipy", "empyrical", "requests", "aiohttp"))
days = [date(2024, 1, 1) + timedelta(days=i) for i in range(400)]
series = figures.Series(days, [100.0 + i % 7 for i in range(400)], [100.0] + [0.0] * 399)
stats = asyncio.run(STATISTICIAN.of(series))
import aiohttp.client_exceptions  # a deferred package still imports when asked for
print(json.dumps({"at_start": at_start, "after": loaded(("numpy", "pandas", "scipy", "empyrical")),
                  "sharpe": stats.risk.sharpe, "aiohttp": aiohttp.client_exceptions.ClientError.__name__}))
"""


def test_the_dashboard_loads_no_numpy_nor_the_socketio_clients_libraries():
    """The web server never loads numpy, pandas or empyrical (the statistics come from a child
    process, as plain floats), nor requests and aiohttp (deferred), which still work if used."""
    env = {**os.environ, "NICEGUI_STORAGE_PATH": "/tmp/edge-lean-probe-sessions"}
    out = subprocess.run(
        [sys.executable, "-c", DASHBOARD_PROBE], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120, env=env
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["at_start"] == [] and got["after"] == []
    assert isinstance(got["sharpe"], float) and got["aiohttp"] == "ClientError"
