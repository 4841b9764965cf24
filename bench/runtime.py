"""The Python the servers under test run on: only what requirements.txt installs, as on Cloud Run.

The development environment also holds test tools, and some libraries import
whatever optional packages they find: uvicorn loads `wsproto` for websockets
(~40 ms) when selenium's dependencies put it there, the stripe SDK imports
every HTTP client it finds. A cold start measured there would count imports a
deployed function never makes. So the benchmark serves from a virtual
environment of its own, made from requirements.txt alone and kept (rebuilt
when that file changes) in the git-ignored .local/ folder.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import venv
from pathlib import Path

from bench import procs

FOLDER = procs.ROOT / ".local" / "bench-runtime"
REQUIREMENTS = procs.ROOT / "requirements.txt"


def python(log=print) -> Path:
    """The runtime environment's interpreter, made or refreshed first if requirements.txt changed."""
    stamp = FOLDER / "requirements.sha256"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    interpreter = FOLDER / "bin" / "python"
    if interpreter.exists() and stamp.exists() and stamp.read_text() == wanted:
        return interpreter
    log(f"making the runtime environment in {FOLDER.relative_to(procs.ROOT)} from requirements.txt")
    venv.EnvBuilder(clear=True, with_pip=True).create(FOLDER)
    subprocess.run(
        [str(interpreter), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
        check=True,
        stdout=sys.stderr,
    )
    # Compiled once here, as a deployed image has its bytecode: no run pays for compiling.
    subprocess.run(
        [
            str(interpreter),
            "-m",
            "compileall",
            "-q",
            str(procs.ROOT / "main.py"),
            str(procs.ROOT / "common"),
            str(procs.ROOT / "checkout"),
            str(procs.ROOT / "webhook"),
            str(procs.ROOT / "payments"),
        ],
        check=False,
        stdout=subprocess.DEVNULL,
    )
    stamp.write_text(wanted)
    return interpreter
