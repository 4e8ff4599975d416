"""Shared fixtures. Tests import the installed package and write only under tmp_path."""

from __future__ import annotations

import mindspore as ms
import pytest


@pytest.fixture
def pynative():
    """Eager execution: shape and gradient checks need no graph compilation (seconds each)."""
    ms.set_context(mode=ms.PYNATIVE_MODE)
    ms.set_device("CPU")
    yield
    ms.set_context(mode=ms.GRAPH_MODE)
