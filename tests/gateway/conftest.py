from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.downstream import Downstream, running_downstream
from tests.support.servers import ServerProcess, start_server


@pytest.fixture(scope="module")
def downstream() -> Iterator[Downstream]:
    with running_downstream() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(
    downstream: Downstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A gateway process whose image-utils is the test downstream, with a 0.5 s timeout."""
    server = start_server(
        "gateway",
        tmp_path_factory.mktemp("gateway"),
        env={
            "EASEL_IMAGE_UTILS_URL": downstream.url,
            "EASEL_IMAGE_UTILS_TIMEOUT": "0.5",
            "EASEL_CORS_ORIGINS": '["https://app.example"]',
        },
    )
    yield server
    server.stop()
