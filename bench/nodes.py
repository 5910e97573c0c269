"""The benchmark's runtime nodes, run as `python -m edge.run bench.nodes:node` (or `:nagle`).

`BrokerSettings.from_env` has no variable for TCP_NODELAY, so `nagle` is a `Node` whose
`run` applies `BENCH_NODELAY` (0/1) to the settings it is given; `node` is a plain `Node`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from edge import BrokerSettings, Context, Node

from .catalog import ECHO, ECHO_NAGLE, FULL_CATALOG, EchoRep, EchoReq


class SettingsNode(Node):
    """A Node that takes `nodelay` from `BENCH_NODELAY` when it is set."""

    async def run(self, settings: BrokerSettings, **kwargs: Any) -> None:
        flag = os.environ.get("BENCH_NODELAY")
        if flag is not None:
            settings = dataclasses.replace(settings, nodelay=flag.lower() not in ("0", "false", "no", "off"))
        await super().run(settings, **kwargs)


async def echo(req: EchoReq, ctx: Context) -> EchoRep:
    return EchoRep(data=req.data)


node = Node("bench", catalog=FULL_CATALOG)
node.command(ECHO)(echo)

nagle = SettingsNode("benchnagle", catalog=FULL_CATALOG)
nagle.command(ECHO_NAGLE)(echo)
