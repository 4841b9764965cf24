"""The launcher of Google's Firestore emulator (`devtools.firestore_emulator`) and the suite's rule for it.

It serves the real client on loopback, stops with everything it started
(the script and its Java child), also when its owner exits or is signalled,
and says what is missing when it is not installed: the Firestore tests then
skip on a developer's machine and fail in CI.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from google.cloud import firestore

from devtools.firestore_emulator import EmulatorError, EmulatorNotInstalled, start_firestore_emulator
from tests.support.firestore import unique_project_id

REPO_ROOT = Path(__file__).resolve().parent.parent


def group_is_gone(group: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while True:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def accepts_connections(host_port: str) -> bool:
    host, port = host_port.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture
def own_emulator(running_emulator):
    """An emulator of this test's own, to stop or signal (the session's one proves it is installed)."""
    emulator = start_firestore_emulator()
    yield emulator
    emulator.stop()


def test_the_client_reads_and_writes_through_the_emulator_on_loopback(firestore_emulator, firestore_project):
    assert firestore_emulator.startswith("127.0.0.1:")
    ref = firestore.Client(project=firestore_project).document("payments/cs_test_1")

    ref.set({"status": "complete"})

    assert ref.get().to_dict() == {"status": "complete"}


def test_clear_deletes_one_projects_documents(running_emulator, firestore_project):
    kept_project = unique_project_id()
    firestore.Client(project=firestore_project).document("payments/a").set({"x": 1})
    firestore.Client(project=kept_project).document("payments/a").set({"x": 1})

    running_emulator.clear(firestore_project)

    assert not firestore.Client(project=firestore_project).document("payments/a").get().exists
    assert firestore.Client(project=kept_project).document("payments/a").get().exists


def test_stop_ends_the_script_and_its_java_child_and_may_be_called_twice(own_emulator):
    group = os.getpgid(own_emulator.process.pid)
    assert group == own_emulator.process.pid != os.getpgid(0)  # a process group of its own

    own_emulator.stop()
    own_emulator.stop()

    assert group_is_gone(group, within=0)
    assert not accepts_connections(own_emulator.host_port)


def test_a_port_in_use_is_an_error_with_the_emulators_output(running_emulator):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(EmulatorError, match=f"port {port} is in use") as caught:
            start_firestore_emulator(port=port)

    assert "Address already in use" in str(caught.value)


# A program that starts an emulator and runs until it is signalled. It takes
# Ctrl-C as a program run from a terminal does, even if this test runs in the
# background (where SIGINT is ignored).
OWNER = textwrap.dedent("""
    import os, signal, time
    from devtools.firestore_emulator import start_firestore_emulator
    signal.signal(signal.SIGINT, signal.default_int_handler)
    emulator = start_firestore_emulator()
    print(os.getpgid(emulator.process.pid), flush=True)
    time.sleep(60)
""")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_the_emulator_stops_when_its_owner_is_interrupted_or_terminated(running_emulator, signum):
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    group = None
    try:
        group = int(owner.stdout.readline())
        owner.send_signal(signum)
        owner.wait(timeout=15)
        assert group_is_gone(group)
    finally:
        owner.kill()
        owner.wait()
        if group is not None and not group_is_gone(group, within=0):
            os.killpg(group, signal.SIGKILL)  # the test failed: leave nothing behind


def test_missing_java_or_gcloud_says_how_to_install(monkeypatch):
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("JAVA", raising=False)
    with pytest.raises(EmulatorNotInstalled, match="Java is not installed"):
        start_firestore_emulator()

    monkeypatch.setenv("JAVA", sys.executable)  # any executable: only gcloud is looked for next
    with pytest.raises(EmulatorNotInstalled, match="gcloud components install cloud-firestore-emulator"):
        start_firestore_emulator()


# The suite's rule: without the emulator, skip locally with one line; fail in CI.

USES_FIRESTORE = "def test_uses_firestore(firestore_emulator):\n    pass\n"


def run_suite_without_the_emulator(tmp_path: Path, **env) -> subprocess.CompletedProcess:
    (tmp_path / "test_uses_firestore.py").write_text(USES_FIRESTORE)
    environment = {k: v for k, v in os.environ.items() if k != "CI"}
    # No gcloud on PATH; JAVA names an executable so that the emulator is what is missing.
    environment.update(PATH="", JAVA=sys.executable, PYTHONPATH=str(REPO_ROOT), **env)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.support.firestore",
            "-p",
            "no:cacheprovider",
            "-rsE",
            "test_uses_firestore.py",
        ],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_without_the_emulator_firestore_tests_skip_saying_how_to_install_it(tmp_path):
    result = run_suite_without_the_emulator(tmp_path)

    assert result.returncode == 0, result.stdout
    (skipped,) = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert "gcloud components install cloud-firestore-emulator" in skipped
    assert "google-cloud-cli-firestore-emulator" in skipped
    assert "1 skipped" in result.stdout


def test_without_the_emulator_firestore_tests_fail_in_ci(tmp_path):
    result = run_suite_without_the_emulator(tmp_path, CI="true")

    assert result.returncode == 1, result.stdout
    assert "gcloud components install cloud-firestore-emulator" in result.stdout
    assert "CI must run these tests" in result.stdout
    assert "1 error" in result.stdout
