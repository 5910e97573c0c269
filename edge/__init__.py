"""The runtime every node stands on: MQTT v5 session, typed handlers, request/response,
status and heartbeat, graceful shutdown, the local broker, the launcher and the CLI."""

__version__ = "0.1.0"

from .client import Client
from .context import Context
from .delivery import AckPolicy
from .errors import CallTimeout, ConnectError, EdgeError, PublishRefused, Rejected, RemoteError
from .node import Node
from .settings import BrokerSettings

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
