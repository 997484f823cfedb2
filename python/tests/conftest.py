"""Shared fixtures: a fresh local repository per test."""

from __future__ import annotations

import pytest

import floe


@pytest.fixture
def repo(tmp_path) -> floe.Repository:
    return floe.Repository.init(str(tmp_path / "repo"))
