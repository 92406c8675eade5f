from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.nodes.helpers import shutdown_pool


@pytest.fixture(scope="session", autouse=True)
def _cpu_pool() -> Iterator[None]:
    """The helpers' process pool starts on first use; stop it when the session ends."""
    yield
    shutdown_pool()
