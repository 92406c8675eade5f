"""The HTTP API: `create_app(settings)` wires everything; routers translate HTTP to service calls."""

from nodeloom.api.app import create_app

__all__ = ["create_app"]
