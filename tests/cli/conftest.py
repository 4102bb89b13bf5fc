from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _logging_reset() -> Iterator[None]:
    """The commands point structlog at the runner's stderr, which is closed after them."""
    yield
    structlog.reset_defaults()
