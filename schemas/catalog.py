"""The project's topic catalog: every topic the nodes use, in one list.

Domain entries are added here as the nodes are built; the runtime's own per-node
topics (status, heartbeat, error, ping) are in `topics.PER_NODE`. The broker's ACL,
the AsyncAPI document and the JSON Schemas are all generated from this list.
"""

from __future__ import annotations

from .topics import Catalog

# Every node of the design has a broker user of its own, even before it has topics.
NODES = frozenset({
    "universe", "scoring", "optimization", "portfolio", "trading", "opportunity",
    "generator", "evaluator", "coordinator", "planning", "scheduler", "dashboard",
})

# Nodes that run as several workers; each instance `<node>_<k>` has its own status.
SCALABLE = {"evaluator": 8}

ENTRIES: tuple = ()

CATALOG = Catalog(entries=ENTRIES, nodes=NODES, scalable=SCALABLE)
