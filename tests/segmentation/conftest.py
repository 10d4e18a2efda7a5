from __future__ import annotations

from pathlib import Path

import pytest

from tests.segmentation.tiny_fastsam import build_tiny_fastsam


@pytest.fixture(scope="session")
def fastsam_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random FastSAM-s-architecture checkpoint, built once per session."""
    return build_tiny_fastsam(tmp_path_factory.mktemp("fastsam"))
