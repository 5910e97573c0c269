"""The only way out of the test boards' network: an HTTP proxy on the controller that reaches
the package registries and nothing else.

The boards live in network namespaces with no route out (a real board would have the
internet; these have a LAN of their own and this). The proxy runs in the host's namespace and
listens on a UNIX socket; inside each board's namespace a bridge listens on 127.0.0.1:3128 and
hands every connection to that socket, so no address of the host is ever visible to a board.
apt talks plain HTTP through it (absolute-form requests), pip HTTPS (CONNECT); any other host
is refused with 403 and counted.

    python -m tests.testbed.proxy serve  --unix /run/edgetb/proxy.sock --log proxy.log
    python -m tests.testbed.proxy bridge --unix /run/edgetb/proxy.sock --port 3128
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from urllib.parse import urlsplit

REGISTRIES = frozenset({"deb.debian.org", "security.debian.org", "pypi.org", "files.pythonhosted.org"})


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _splice(
    a: tuple[asyncio.StreamReader, asyncio.StreamWriter], b: tuple[asyncio.StreamReader, asyncio.StreamWriter]
) -> None:
    await asyncio.gather(_pipe(a[0], b[1]), _pipe(b[0], a[1]))


def target(request_line: str) -> tuple[str, str, int, str]:
    """(method, host, port, the request line to send upstream) of a proxy request; ValueError
    for anything else."""
    method, uri, version = request_line.split(" ", 2)
    if method == "CONNECT":
        host, _, port = uri.rpartition(":")
        return method, host.strip("[]").lower(), int(port), ""
    parts = urlsplit(uri)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"not a proxy request: {uri!r}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return method, parts.hostname.lower(), parts.port or 80, f"{method} {path} {version}"


class Proxy:
    def __init__(self, allowed: frozenset[str], log: str | None) -> None:
        self.allowed = allowed
        self.log = open(log, "a", buffering=1) if log else None  # noqa: SIM115 - lives as long as the proxy

    def note(self, line: str) -> None:
        if self.log:
            self.log.write(line + "\n")

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        first, _, rest = head.decode("latin-1").partition("\r\n")
        try:
            method, host, port, line = target(first)
        except ValueError:
            self.note(f"bad {first!r}")
            writer.write(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
            writer.close()
            return
        if host not in self.allowed:
            self.note(f"refused {method} {host}:{port}")
            writer.write(b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\nnot a package registry\r\n")
            writer.close()
            return
        try:
            upstream = await asyncio.wait_for(asyncio.open_connection(host, port), 30)
        except (OSError, TimeoutError) as exc:
            self.note(f"unreachable {host}:{port} {exc}")
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n")
            writer.close()
            return
        self.note(f"{method} {host}:{port}")
        if method == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            upstream[1].write(f"{line}\r\n{rest}".encode("latin-1"))
        await _splice((reader, writer), upstream)


async def serve(unix: str, log: str | None) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(unix)
    server = await asyncio.start_unix_server(Proxy(REGISTRIES, log).handle, path=unix)
    os.chmod(unix, 0o600)
    async with server:
        await server.serve_forever()


async def bridge(unix: str, port: int) -> None:
    async def hand_over(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream = await asyncio.open_unix_connection(unix)
        except OSError:
            writer.close()
            return
        await _splice((reader, writer), upstream)

    server = await asyncio.start_server(hand_over, "127.0.0.1", port, reuse_address=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["serve", "bridge"])
    parser.add_argument("--unix", required=True)
    parser.add_argument("--port", type=int, default=3128)
    parser.add_argument("--log")
    args = parser.parse_args()
    asyncio.run(serve(args.unix, args.log) if args.mode == "serve" else bridge(args.unix, args.port))


if __name__ == "__main__":
    main()
