"""The pure workflow engine: graph model, node schemas, validation, planning and execution.

Imports only the stdlib and pydantic. It reports what happens solely by yielding events.
"""

from nodeloom.engine.errors import GraphError, NodeCancelled, NodeError
from nodeloom.engine.graph import Graph, Link, NodeInstance
from nodeloom.engine.node import Context, Node
from nodeloom.engine.registry import Registry
from nodeloom.engine.schema import Param, Port, PortType

__all__ = [
    "Context",
    "Graph",
    "GraphError",
    "Link",
    "Node",
    "NodeCancelled",
    "NodeError",
    "NodeInstance",
    "Param",
    "Port",
    "PortType",
    "Registry",
]
