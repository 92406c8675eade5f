"""Hosted model providers: one module per vendor protocol, a small protocol, retries and fallback.

Imports only httpx, the standard library and `nodeloom.errors`.
"""

from nodeloom.providers._http import data_uri, fetch_media
from nodeloom.providers.base import (
    JobProvider,
    JobState,
    JobStatus,
    Media,
    Polling,
    Provider,
    ProviderResult,
    run_job,
)
from nodeloom.providers.config import PROVIDER_SETTINGS, build_providers
from nodeloom.providers.errors import (
    ProviderCancelled,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from nodeloom.providers.fal import FalProvider
from nodeloom.providers.gemini import GeminiProvider
from nodeloom.providers.mock import MockProvider
from nodeloom.providers.models import HOSTED_MODELS, HostedModel, Price, VendorModel, routes
from nodeloom.providers.openai_compat import OpenAICompatProvider, user_message
from nodeloom.providers.replicate import ReplicateProvider
from nodeloom.providers.routing import RetryPolicy, Route, Router, Submission

__all__ = [
    "HOSTED_MODELS",
    "PROVIDER_SETTINGS",
    "FalProvider",
    "GeminiProvider",
    "HostedModel",
    "JobProvider",
    "JobState",
    "JobStatus",
    "Media",
    "MockProvider",
    "OpenAICompatProvider",
    "Polling",
    "Price",
    "Provider",
    "ProviderCancelled",
    "ProviderError",
    "ProviderResult",
    "ProviderTimeout",
    "ProviderUnavailable",
    "ReplicateProvider",
    "RetryPolicy",
    "Route",
    "Router",
    "Submission",
    "VendorModel",
    "build_providers",
    "data_uri",
    "fetch_media",
    "routes",
    "run_job",
    "user_message",
]
