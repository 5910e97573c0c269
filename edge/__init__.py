"""The runtime every node stands on: MQTT v5 session, typed handlers, request/response,
status and heartbeat, graceful shutdown, the local broker, the launcher and the CLI."""

__version__ = "0.1.0"

from . import lean

lean.install()  # before paho and pydantic are imported

from .client import Client  # noqa: E402
from .context import Context  # noqa: E402
from .delivery import AckPolicy  # noqa: E402
from .errors import CallTimeout, ConnectError, EdgeError, PublishRefused, Rejected, RemoteError  # noqa: E402
from .node import Node  # noqa: E402
from .settings import BrokerSettings  # noqa: E402

__all__ = [
    "AckPolicy",
    "BrokerSettings",
    "CallTimeout",
    "Client",
    "ConnectError",
    "Context",
    "EdgeError",
    "Node",
    "PublishRefused",
    "Rejected",
    "RemoteError",
    "__version__",
]
