"""Engine errors.

EngineError
├── GraphError        — a graph failed validation; carries details [{path, message}]
├── NodeError         — a node failed while running; carries node_id and a code
│   └── NodeTimeout   — a node ran past its deadline
└── NodeCancelled     — the execution was cancelled while the node ran
"""

from __future__ import annotations


class EngineError(Exception):
    pass


class GraphError(EngineError):
    def __init__(self, details: list[dict[str, str]]):
        self.details = details
        first = details[0]["message"] if details else "invalid graph"
        super().__init__(first)


class NodeError(EngineError):
    """Raise from Node.run with a human message; the executor attaches the node id."""

    def __init__(self, message: str, *, code: str = "node_failed", node_id: str | None = None,
                 extra: dict[str, object] | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.node_id = node_id
        #: JSON fields added to the error the execution reports (e.g. a remote server's own account of it)
        self.extra = extra


class NodeTimeout(NodeError):
    def __init__(self, message: str, *, node_id: str | None = None):
        super().__init__(message, code="node_timeout", node_id=node_id)


class NodeCancelled(EngineError):
    pass
