"""Google's Cloud Firestore emulator, for the tests, `make run --firestore` and the benchmark.

The emulator comes with the Google Cloud CLI (`gcloud components install
cloud-firestore-emulator`, or the `google-cloud-cli-firestore-emulator`
package from Google's apt repository) and runs on Java. This module starts
the `cloud_firestore_emulator` script that `gcloud emulators firestore start`
wraps: started directly it answers after 0.9 s (median of 7 starts on 2
cores), through gcloud after 1.2 s, because gcloud first starts its own
Python and then runs the same script. Stopping takes about 0.4 s.

The script runs Java as a child process, so the emulator gets a process
group of its own and is stopped by signalling that group: stopping the
script alone would leave Java running. Emulators still running are stopped
when the interpreter exits and when the owner receives SIGTERM; Ctrl-C
(SIGINT) exits through the interpreter's normal exit, and the emulator's own
group never sees the terminal's Ctrl-C.
"""

from __future__ import annotations

import atexit
import os
import queue
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

SCRIPT = Path("platform", "cloud-firestore-emulator", "cloud_firestore_emulator")
READY_LINE = "Dev App Server is now running"
PORT_TAKEN = "Address already in use"
HOW_TO_INSTALL = (
    "install it with `gcloud components install cloud-firestore-emulator`, or the "
    "google-cloud-cli-firestore-emulator package from Google's apt repository"
)


class EmulatorError(RuntimeError):
    """The emulator could not be started; the message carries its output."""


class EmulatorNotInstalled(EmulatorError):
    """The emulator, Java or gcloud is missing; the message says how to get it."""


class EmulatorProcess:
    """A running emulator: the script's process, leader of the emulator's process group."""

    def __init__(self, process: _Child, host_port: str, output: list[str]):
        self.process = process
        self.host_port = host_port
        self._output = output
        self._stop_lock = threading.RLock()  # RLock: the SIGTERM handler may interrupt a stop()

    @property
    def output(self) -> str:
        """Everything the emulator printed so far."""
        return "".join(self._output)

    def clear(self, project: str) -> None:
        """Delete every document of `project`'s default database."""
        url = f"http://{self.host_port}/emulator/v1/projects/{project}/databases/(default)/documents"
        with urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=5):
            pass

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the emulator and everything it started, and wait for them; safe to call twice.

        SIGINT, as a terminal's Ctrl-C would send: the script's shell then
        waits for Java to exit before it exits itself, so both are reaped
        and nothing is left behind. SIGKILL if that takes too long.
        """
        with self._stop_lock:
            _running.discard(self)
            group = self.process.pid
            if self.process.poll() is None:
                _signal_group(group, signal.SIGINT)
                try:
                    self.process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    _signal_group(group, signal.SIGKILL)
                    self.process.wait()
            # Java outlives the script only if the script was killed: make sure.
            deadline = time.monotonic() + timeout
            while _signal_group(group, 0):
                if time.monotonic() > deadline:
                    _signal_group(group, signal.SIGKILL)
                    break
                time.sleep(0.05)


def start_firestore_emulator(host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0) -> EmulatorProcess:
    """Start the emulator and return once it answers on `host:port`.

    `port=0` picks a free port (the emulator cannot be asked for one and
    report it), and picks again if another process takes it first.
    """
    command = emulator_command()
    attempts_left = 3 if port == 0 else 1
    while True:
        chosen = port or _free_port(host)
        try:
            return _start([*command, f"--host={host}", f"--port={chosen}"], host, chosen, timeout)
        except _PortTaken as taken:
            attempts_left -= 1
            if not attempts_left:
                raise EmulatorError(f"Firestore emulator: port {chosen} is in use. Output:\n{taken}") from None


def emulator_command() -> list[str]:
    """The command that starts the emulator, or EmulatorNotInstalled saying what is missing."""
    java = os.environ.get("JAVA") or shutil.which("java")  # the script runs $JAVA, else java
    if not java:
        raise EmulatorNotInstalled(
            "Java is not installed (the Firestore emulator runs on Java 11+, e.g. apt-get install default-jre-headless)"
        )
    gcloud = shutil.which("gcloud")
    if not gcloud:
        raise EmulatorNotInstalled(f"gcloud and its Firestore emulator are not installed: {HOW_TO_INSTALL}")
    script = _sdk_root(gcloud) / SCRIPT
    if not script.is_file():
        raise EmulatorNotInstalled(f"Google's Firestore emulator is not installed: {HOW_TO_INSTALL}")
    return [str(script)]


def _sdk_root(gcloud: str) -> Path:
    """The Cloud SDK directory: gcloud is its bin/gcloud (often through a symlink), else ask gcloud."""
    guess = Path(gcloud).resolve().parents[1]
    if (guess / SCRIPT).is_file():
        return guess
    with tempfile.TemporaryDirectory() as config:
        answer = subprocess.run(
            [gcloud, "info", "--format=value(installation.sdk_root)"],
            env=gcloud_env(config),
            capture_output=True,
            text=True,
            timeout=30,
        )
    return Path(answer.stdout.strip() or guess)


def gcloud_env(config_dir: str) -> dict:
    """An environment in which gcloud reads no user configuration and reaches for no metadata server."""
    return {
        **os.environ,
        "CLOUDSDK_CONFIG": config_dir,
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false",
        "GCE_METADATA_HOST": "127.0.0.1:9",
    }


class _PortTaken(Exception):
    pass


def _start(command: list[str], host: str, port: int, timeout: float) -> EmulatorProcess:
    process = _spawn(command)
    output: list[str] = []
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, output, lines), daemon=True).start()
    emulator = EmulatorProcess(process, f"{host}:{port}", output)
    _running.add(emulator)
    _stop_on_exit()

    deadline = time.monotonic() + timeout
    problem = f"did not start within {timeout:g} s"
    try:
        while True:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            if line is None:
                problem = "exited before it was ready"
                break
            if READY_LINE in line:
                if _answers(host, port):
                    return emulator
                problem = "said it was running, but its REST root did not answer"
                break
    except queue.Empty:
        pass
    emulator.stop()
    if PORT_TAKEN in emulator.output:
        raise _PortTaken(emulator.output)
    raise EmulatorError(
        f"Firestore emulator {problem} (exit code {process.returncode}). Output:\n{emulator.output or '(none)'}"
    )


class _Child:
    """A spawned process, with the part of Popen's interface used here."""

    def __init__(self, pid: int, stdout):
        self.pid = pid
        self.stdout = stdout
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0.0)
            time.sleep(0.02)
        assert self.returncode is not None
        return self.returncode


def _spawn(command: list[str]) -> _Child:
    """Start `command` in a session of its own, output to a pipe, SIGINT at its default action.

    stop() interrupts the emulator as Ctrl-C would, so SIGINT must not be
    ignored, but a process started in the background by a shell ignores it
    and its children inherit that; Popen cannot reset it (short of
    preexec_fn, unsafe with threads), posix_spawn can.
    """
    read_end, write_end = os.pipe()
    try:
        pid = os.posix_spawn(
            command[0],
            command,
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, write_end, 1),
                (os.POSIX_SPAWN_DUP2, write_end, 2),
            ],
            setsid=True,
            setsigdef=(signal.SIGINT,),
        )
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    return _Child(pid, open(read_end, encoding="utf-8", errors="replace"))


def _pump(stream, output: list[str], lines: queue.Queue) -> None:
    """Drain the emulator's output so it never blocks on a full pipe."""
    with stream:
        for line in stream:
            output.append(line)
            lines.put(line)
    lines.put(None)  # end of output: the process has exited


def _answers(host: str, port: int) -> bool:
    """Whether the emulator's REST root answers "Ok": the port is ours, not another process's."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=5) as response:
            return response.read().strip() == b"Ok"
    except OSError:
        return False


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _signal_group(group: int, signum: int) -> bool:
    """Send `signum` to a process group; False when the group has no process left."""
    try:
        os.killpg(group, signum)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:  # a zombie leader on some systems; nothing of ours to stop
        return False


# Emulators this process started and has not stopped yet.
_running: set[EmulatorProcess] = set()
_handlers_installed = False


def _stop_all() -> None:
    for emulator in list(_running):
        emulator.stop()


def _stop_on_exit() -> None:
    """Stop running emulators at interpreter exit and on SIGTERM, once per process.

    SIGTERM is only taken over while it still has its default action (an
    owner with its own handler stops its emulator itself), and the process
    still dies of SIGTERM afterwards, as it would have.
    """
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(_stop_all)
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:

        def on_sigterm(signum, frame):
            _stop_all()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

        signal.signal(signal.SIGTERM, on_sigterm)
