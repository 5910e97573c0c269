"""The benchmark's runtime nodes, run as `python -m edge.run bench.nodes:node` (or `:nagle`,
started with `MQTT_NODELAY=0` so that its socket has TCP_NODELAY off)."""

from __future__ import annotations

from edge import Context, Node

from .catalog import ECHO, ECHO_NAGLE, FULL_CATALOG, EchoRep, EchoReq


async def echo(req: EchoReq, ctx: Context) -> EchoRep:
    return EchoRep(data=req.data)


node = Node("bench", catalog=FULL_CATALOG)
node.command(ECHO)(echo)

nagle = Node("benchnagle", catalog=FULL_CATALOG)
nagle.command(ECHO_NAGLE)(echo)
