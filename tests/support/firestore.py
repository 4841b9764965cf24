"""Firestore emulator fixtures, so the tests exercise the real client.

``firestore_emulator`` (session) yields "host:port"; ``firestore_project``
(per test) sets ``FIRESTORE_EMULATOR_HOST`` and returns a project id no other
test uses. The emulator has no way to wipe its data over the wire, but it
keeps every project apart, so a fresh project id is an empty database.
conftest.py registers these fixtures for the whole suite.
"""

from __future__ import annotations

import uuid

import pytest

from devtools.firestore_emulator import start_firestore_emulator


def unique_project_id(prefix: str = "test") -> str:
    """A project id that no other test uses, hence an empty database."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def firestore_emulator():
    """One emulator for the whole session; yields its "host:port"."""
    emulator = start_firestore_emulator()
    try:
        yield emulator.host_port
    finally:
        emulator.stop()


@pytest.fixture
def firestore_project(firestore_emulator, monkeypatch):
    """An empty Firestore project for one test, with the client pointed at the emulator."""
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator)
    return unique_project_id()
