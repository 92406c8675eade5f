"""Kept so that `nodeloom.client.core` imports still work: the SDK lives in the nodeloom-client distribution."""

from nodeloom_client import APIError as NodeloomAPIError
from nodeloom_client import AsyncNodeloom as AsyncClient
from nodeloom_client import Execution, Submitted
from nodeloom_client import Nodeloom as Client

__all__ = ["AsyncClient", "Client", "Execution", "NodeloomAPIError", "Submitted"]
