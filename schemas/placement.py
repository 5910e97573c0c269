"""Which nodes exist, and which run as several workers: what a node needs to know of the
system at start, kept apart from the catalog so that a node does not build every
domain's models to learn it."""

from __future__ import annotations

# Every node of the design has a broker user of its own, even before it has topics.
NODES = frozenset(
    {
        "universe",
        "scoring",
        "optimization",
        "portfolio",
        "trading",
        "opportunity",
        "generator",
        "evaluator",
        "coordinator",
        "planning",
        "scheduler",
        "dashboard",
    }
)

# Nodes that run as several workers; each instance `<node>_<k>` has its own status.
SCALABLE = {"evaluator": 8}
