"""One saved tiny model per family for the whole session (building them is the slow part)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.families.tiny import FAMILY_TYPES, save_tiny_family


@pytest.fixture(scope="session")
def family_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("families")
    return {model_type: save_tiny_family(model_type, root / model_type) for model_type in FAMILY_TYPES}
