"""Firestore emulator fixtures, so the tests exercise the real client on Google's emulator.

``firestore_emulator`` (session) yields "host:port"; ``firestore_project``
(per test) sets ``FIRESTORE_EMULATOR_HOST`` and returns a project id no other
test uses: the emulator keeps projects apart, so a fresh id is an empty
database, and the project's documents are deleted when the test ends.
Without the emulator (or Java, or gcloud) these tests skip, saying how to
install it; under CI=true they fail. conftest.py registers these fixtures
for the whole suite.
"""

from __future__ import annotations

import uuid

import pytest

from devtools.firestore_emulator import EmulatorNotInstalled, start_firestore_emulator
from tests.support.ci import missing


def unique_project_id(prefix: str = "test") -> str:
    """A project id that no other test uses, hence an empty database."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def running_emulator():
    """One emulator for the whole session."""
    try:
        emulator = start_firestore_emulator()
    except EmulatorNotInstalled as error:
        missing(str(error))
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="session")
def firestore_emulator(running_emulator):
    """The session's emulator as "host:port", what FIRESTORE_EMULATOR_HOST takes."""
    return running_emulator.host_port


@pytest.fixture
def firestore_project(running_emulator, monkeypatch):
    """An empty Firestore project for one test, with the client pointed at the emulator."""
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", running_emulator.host_port)
    project = unique_project_id()
    yield project
    running_emulator.clear(project)  # keeps the emulator's memory flat over a long session
