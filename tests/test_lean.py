"""An idle node loads only what it uses (edge/lean.py, the lazy catalog, deferred models),
and what it left unloaded still works when something asks for it."""

from __future__ import annotations

import json
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
