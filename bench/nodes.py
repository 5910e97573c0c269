"""The benchmark's runtime nodes, run as `python -m edge.run bench.nodes:node` (or `:nagle`,
started with `MQTT_NODELAY=0` so that its socket has TCP_NODELAY off)."""

from __future__ import annotations

from edge import Context, Node
from schemas.topics import Event

from .catalog import ECHO, ECHO_EVT, ECHO_EVT_NAGLE, ECHO_NAGLE, ECHOED, ECHOED_NAGLE, FULL_CATALOG, EchoRep, EchoReq


async def echo(req: EchoReq, ctx: Context) -> EchoRep:
    return EchoRep(data=req.data)


def echo_after(evt: Event):
    async def handler(req: EchoReq, ctx: Context) -> EchoRep:
        reply = EchoRep(data=req.data)
        await ctx.publish(evt, reply)
        return reply

    return handler


node = Node("bench", catalog=FULL_CATALOG)
node.command(ECHO)(echo)
node.command(ECHO_EVT)(echo_after(ECHOED))

nagle = Node("benchnagle", catalog=FULL_CATALOG)
nagle.command(ECHO_NAGLE)(echo)
nagle.command(ECHO_EVT_NAGLE)(echo_after(ECHOED_NAGLE))
