"""The signature is the contract: every node's handlers take and return what the catalog says."""

from __future__ import annotations

import pytest

from edge.node import Node
from edge.run import load_node
from schemas.catalog import CATALOG
from tests.nodes.catalog import COUNTER_GET, TEST_CATALOG, Sleep, Total

NODES = sorted(n for n in CATALOG.nodes if n not in ("operator", "dashboard"))


@pytest.mark.parametrize("name", NODES)
def test_handler_type_hints_match_the_catalog(name):
    try:
        node = load_node(name)
    except ModuleNotFoundError as exc:
        if exc.name == f"nodes.{name}.node":
            pytest.skip(f"{name} has no node package yet")
        raise
    assert node.signature_mismatches() == []


def test_a_mismatch_is_reported():
    node = Node("counter", catalog=CATALOG.merged(TEST_CATALOG))

    @node.command(COUNTER_GET)
    async def get(req: Total, ctx) -> Sleep: ...

    problems = node.signature_mismatches()
    assert any("takes Total, the catalog says Sleep" in p for p in problems)
    assert any("returns Sleep, the catalog says Total" in p for p in problems)
