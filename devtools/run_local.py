"""Run the whole payment flow on one machine: `make run` (or `python -m devtools.run_local`).

What starts, and why each piece is there:

- the API, as a real `functions-framework --target=api` process, so it runs
  exactly the way Cloud Run and the test suite's served-process tests run it;
- with no STRIPE_SECRET_KEY, the Stripe stand-in (`devtools.stripe_standin`)
  in this process, with the API pointed at it through STRIPE_API_BASE and a
  generated sk_test_ key and whsec_ webhook secret: nothing leaves the
  machine and payments are SIMULATED (`python -m devtools.simulate`);
  with a test key, real Stripe test mode, with webhooks forwarded by the
  Stripe CLI (`stripe listen`) when it is installed;
- the payment store: the embedded SQLite file in `.local/` unless Firestore
  settings are given, or the Firestore emulator with `--firestore`;
- the example page (`devtools/example/`), served from its own origin so the
  browser's CORS rules apply exactly as they do for the real frontend.

Ports are checked before anything starts, so a second `make run` fails with
a message naming the port instead of leaving half a stack behind. Every
child runs in its own process group and is stopped on Ctrl-C or SIGTERM.
The settings `simulate` needs are written to `.local/dev.env`, so no secret
has to be copied by hand.

`LocalStack` is the same machinery as a class, for tests that need the real
stack on free ports.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from devtools.simulate import STORE_SETTINGS

if TYPE_CHECKING:
    from devtools.firestore_emulator import EmulatorProcess
    from devtools.stripe_standin import StripeStandin
from payments.events import HANDLED_EVENTS

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DIR = Path(__file__).resolve().parent / "example"
DEFAULT_STATE_DIR = ROOT / ".local"
ENV_FILE_NAME = "dev.env"

API_READY_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 5
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "0.0.0.0", "::1", "::")
# The stand-in's admin endpoints are unauthenticated: they never listen beyond this machine.
STANDIN_HOST = "127.0.0.1"


class StartupError(RuntimeError):
    """The stack cannot start; the message says what to do about it."""


class PortInUse(StartupError):
    pass


# --------------------------------------------------------------------------
# Ports and processes


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port and we could bind it.

    Binding is the real test (SO_REUSEADDR, as servers set it, so a socket
    in TIME_WAIT does not count as taken); the connect attempt also catches
    a server bound to another address of the same port, which some systems
    let a second bind through.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    target = {"0.0.0.0": "127.0.0.1", "localhost": "127.0.0.1", "::": "::1"}.get(host, host)
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.3)
        if probe.connect_ex((target, port)) == 0:
            return False
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing uses right now (for tests and `--api-port 0`)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def start_process(command: list[str], env: dict, name: str) -> subprocess.Popen:
    """Start a child in its own process group, so stopping it stops its workers too.

    Its own group also keeps the terminal's Ctrl-C away from it: we stop the
    children ourselves, in order, instead of racing them.
    """
    try:
        return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    except OSError as error:
        raise StartupError(f"Could not start the {name} ({command[0]}): {error.strerror}.") from error


def stop_process(process: subprocess.Popen, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """SIGTERM the child's process group, then SIGKILL whatever is left after `timeout`."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    try:  # the leader is gone; make sure no worker of its group outlives it
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def wait_until_listening(host: str, port: int, process: subprocess.Popen, name: str, timeout: float) -> None:
    """Return once the child accepts connections on its port; fail early if it exits.

    functions-framework imports main.py before it binds, so an accepted
    connection means the app loaded. A TCP connect, not an HTTP request,
    keeps a probe line out of the API's log.
    """
    target = {"0.0.0.0": "127.0.0.1", "localhost": "127.0.0.1", "::": "::1"}.get(host, host)
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((target, port), timeout=1).close()
            return
        except OSError:
            pass
        if process.poll() is not None:
            raise StartupError(
                f"The {name} exited with code {process.returncode} before serving; see its output above."
            )
        if time.monotonic() > deadline:
            raise StartupError(f"The {name} did not listen on port {port} within {timeout:g} s.")
        time.sleep(0.1)


# --------------------------------------------------------------------------
# The example page


class ExamplePageServer:
    """A tiny static server for `devtools/example/`, plus a generated /config.js.

    config.js hands the page its settings (API URL, publishable key) without a
    build step and without writing a generated file into the repository. Any
    path that is not a file gets index.html, so Stripe's return URL
    (FRONTEND_URL + CHECKOUT_RETURN_PATH, e.g. /hero-me?session_id=…) lands on
    the page, which then shows that session's status.
    """

    def __init__(self, config: dict, host: str = "127.0.0.1", port: int = 0, directory: Path = EXAMPLE_DIR):
        self.config = config
        self.host = host
        self.port = port
        self.directory = directory
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def config_js(self) -> bytes:
        return ("window.CHECKOUT_CONFIG = " + json.dumps(self.config, indent=2) + ";\n").encode()

    def start(self) -> str:
        page = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(page.directory), **kwargs)

            def do_GET(self):
                path = urlsplit(self.path).path
                if path == "/config.js":
                    return self._send(page.config_js(), "text/javascript; charset=utf-8")
                if path != "/" and not (page.directory / path.lstrip("/")).is_file():
                    if "." in path.rsplit("/", 1)[-1]:  # a missing asset stays a 404
                        return super().do_GET()
                    self.path = "/"
                return super().do_GET()

            def _send(self, body: bytes, content_type: str):
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def end_headers(self):
                self.send_header("Cache-Control", "no-store")  # edits show on reload
                super().end_headers()

            def log_message(self, format, *args):
                """Quiet: the API's log is the one worth reading."""

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="example-page", daemon=True)
        self._thread.start()
        return self.url

    @property
    def url(self) -> str:
        return f"http://{display_host(self.host)}:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


# --------------------------------------------------------------------------
# The stack


def display_host(host: str) -> str:
    """The name to put in URLs for a bind address (0.0.0.0 is not a place to browse to)."""
    return "localhost" if host in LOOPBACK_HOSTS else host


def stripe_js_url(api_version: str) -> str:
    """Stripe.js is versioned by release name: 2026-10-28.endive → js.stripe.com/endive/stripe.js."""
    release = api_version.split(".", 1)[1] if "." in api_version else "v3"
    return f"https://js.stripe.com/{release}/stripe.js"


def python_command() -> str:
    """How to call this interpreter in printed commands: .venv/bin/python when it is the repo's."""
    try:
        return str(Path(sys.executable).relative_to(ROOT))
    except ValueError:
        return "python"


@dataclass
class Options:
    host: str = "127.0.0.1"
    api_port: int = 8080
    page_port: int = 5173
    stripe_port: int = 12111
    firestore: bool = False
    state_dir: Path = DEFAULT_STATE_DIR
    env: dict = field(default_factory=lambda: dict(os.environ))


class LocalStack:
    """The API, a Stripe (stand-in or real), a payment store and the example page.

    `start()` checks ports, starts everything and writes the simulate
    settings; `stop()` stops whatever was started, in reverse order, and is
    safe to call at any point (also after a failed start).
    """

    def __init__(self, options: Options):
        self.options = options
        self.env = dict(options.env)
        self.mode = "simulated" if not self.env.get("STRIPE_SECRET_KEY", "").strip() else "stripe"
        self.standin: StripeStandin | None = None
        self.emulator: EmulatorProcess | None = None
        self.api_process: subprocess.Popen | None = None
        self.listen_process: subprocess.Popen | None = None
        self.page: ExamplePageServer | None = None
        self.notes: list[str] = []
        self.api_env: dict = {}
        self._stripe_cli: str | None = None
        self.env_file = options.state_dir / ENV_FILE_NAME

    # -- URLs ---------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://{display_host(self.options.host)}:{self.options.api_port}"

    @property
    def webhook_url(self) -> str:
        host = "127.0.0.1" if self.options.host in LOOPBACK_HOSTS else self.options.host
        return f"http://{host}:{self.options.api_port}/webhook"

    @property
    def page_url(self) -> str:
        return f"http://{display_host(self.options.host)}:{self.options.page_port}"

    def page_origins(self) -> list[str]:
        port = self.options.page_port
        if self.options.host in LOOPBACK_HOSTS:
            return [f"http://localhost:{port}", f"http://127.0.0.1:{port}"]
        return [f"http://{self.options.host}:{port}"]

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> None:
        try:
            self._resolve_ports()
            self._check_ports()
            self.options.state_dir.mkdir(parents=True, exist_ok=True)
            self.api_env = self._api_env()
            if self.mode == "simulated":
                self._start_standin()
            else:
                self._find_webhook_secret()
            if self.options.firestore:
                self._start_firestore()
            self._start_api()
            self._start_stripe_listen()
            self._start_page()
            if self.mode == "simulated":
                self._write_env_file()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.page is not None:
            self.page.stop()
            self.page = None
        for name in ("listen_process", "api_process"):
            process = getattr(self, name)
            if process is not None:
                stop_process(process)
                setattr(self, name, None)
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None
        if self.standin is not None:
            self.standin.stop()
            self.standin = None
            self._remove_env_file()

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def failed_process(self) -> tuple[str, int] | None:
        """(name, exit code) of a child that stopped on its own, else None."""
        for name, process in (("API", self.api_process), ("stripe listen", self.listen_process)):
            if process is not None and process.poll() is not None:
                return name, process.returncode
        return None

    # -- steps --------------------------------------------------------------

    def _resolve_ports(self) -> None:
        """Port 0 means "any free port" (tests); the API needs a number to be told."""
        for name in ("api_port", "page_port", "stripe_port"):
            if getattr(self.options, name) == 0:
                setattr(self.options, name, free_port(STANDIN_HOST if name == "stripe_port" else self.options.host))

    def _check_ports(self) -> None:
        host = self.options.host
        wanted = [
            ("API", "--api-port", host, self.options.api_port),
            ("example page", "--page-port", host, self.options.page_port),
        ]
        if self.mode == "simulated":
            wanted.append(("Stripe stand-in", "--stripe-port", STANDIN_HOST, self.options.stripe_port))
        seen: dict[int, str] = {}
        for name, option, bind_host, port in wanted:
            if port in seen:
                raise PortInUse(f"The {name} and the {seen[port]} cannot share port {port}; change {option}.")
            seen[port] = name
            if not port_is_free(bind_host, port):
                raise PortInUse(
                    f"Port {port} for the {name} is already in use on {bind_host} "
                    f"(is another `make run` still running?). Stop whatever uses it, "
                    f"or choose another port with {option} N."
                )

    def _api_env(self) -> dict:
        env = dict(self.env)
        env["PYTHONUNBUFFERED"] = "1"
        if not env.get("FRONTEND_URL"):
            env["FRONTEND_URL"] = self.page_origins()[0]
        if not env.get("ALLOWED_ORIGINS"):
            origins = self.page_origins()
            frontend = urlsplit(env["FRONTEND_URL"])
            frontend_origin = f"{frontend.scheme}://{frontend.netloc}"
            env["ALLOWED_ORIGINS"] = ",".join(dict.fromkeys([*origins, frontend_origin]))

        if self.mode == "simulated":
            # Fresh secrets per run: the stand-in's world is self-contained, and a
            # secret exported for real Stripe must not leak into it (or vice versa).
            env["STRIPE_SECRET_KEY"] = "sk_test_local" + secrets.token_hex(12)
            env["STRIPE_WEBHOOK_SECRET"] = "whsec_local" + secrets.token_hex(16)
            env["STRIPE_API_BASE"] = f"http://{STANDIN_HOST}:{self.options.stripe_port}"
        elif "_live_" in env["STRIPE_SECRET_KEY"].strip()[:8]:
            raise StartupError(
                "STRIPE_SECRET_KEY is a live key. Local runs take test keys only (sk_test_…), "
                "or no key at all for the Stripe stand-in."
            )

        if self.options.firestore:
            env["PAYMENTS_STORE"] = "firestore"
            env.setdefault("GOOGLE_CLOUD_PROJECT", "demo-local")
        elif not env.get("PAYMENTS_STORE") and not env.get("FIRESTORE_EMULATOR_HOST") and not env.get("K_SERVICE"):
            env["PAYMENTS_STORE"] = f"sqlite:///{self.options.state_dir / 'payments.db'}"
        return env

    def _start_standin(self) -> None:
        from devtools.stripe_standin import StripeStandin

        self.standin = StripeStandin()
        try:
            self.standin.start(STANDIN_HOST, self.options.stripe_port)
        except OSError as error:
            self.standin = None
            raise PortInUse(
                f"The Stripe stand-in could not listen on port {self.options.stripe_port} ({error.strerror}); "
                "choose another with --stripe-port N."
            ) from error

    def _start_firestore(self) -> None:
        from devtools.firestore_emulator import EmulatorError, start_firestore_emulator

        try:
            self.emulator = start_firestore_emulator()
        except EmulatorError as error:
            raise StartupError(f"--firestore: {error}") from error
        self.api_env["FIRESTORE_EMULATOR_HOST"] = self.emulator.host_port

    def _start_api(self) -> None:
        executable = Path(sys.executable).with_name("functions-framework")
        command = [str(executable)] if executable.exists() else [sys.executable, "-m", "functions_framework"]
        command += [
            "--target=api",
            "--source=main.py",
            f"--port={self.options.api_port}",
            f"--host={self.options.host}",
        ]
        self.api_process = start_process(command, self.api_env, "API")
        wait_until_listening(
            self.options.host, self.options.api_port, self.api_process, "API", API_READY_TIMEOUT_SECONDS
        )

    def _find_webhook_secret(self) -> None:
        """With a real test key, take the webhook secret from the Stripe CLI when it is installed.

        `stripe listen` signs with a secret fixed per account and machine, so
        it can be read first (`--print-secret`) and handed to the API before
        the API starts; `_start_stripe_listen` then forwards the events.
        Without the CLI, the user is told what to run.
        """
        if self.api_env.get("STRIPE_WEBHOOK_SECRET", "").strip():
            self.notes.append(
                "Webhook secret from STRIPE_WEBHOOK_SECRET; forward test events with "
                f"`stripe listen --forward-to {self.webhook_url}`."
            )
            return
        cli = shutil.which("stripe")
        if cli is None:
            self.notes.append(
                "STRIPE_WEBHOOK_SECRET is not set, so /webhook answers 500. Install the Stripe CLI, run "
                f"`stripe listen --forward-to {self.webhook_url}`, set STRIPE_WEBHOOK_SECRET to the whsec_… "
                "it prints, and restart."
            )
            return
        command = [cli, "listen", "--api-key", self.api_env["STRIPE_SECRET_KEY"].strip(), "--print-secret"]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=30)
            secret = result.stdout.strip() if result.returncode == 0 else ""
        except (OSError, subprocess.TimeoutExpired):
            secret = ""
        if not secret.startswith("whsec_"):
            self.notes.append(
                "`stripe listen --print-secret` gave no whsec_ secret (is the key valid?); "
                "/webhook answers 500 until STRIPE_WEBHOOK_SECRET is set."
            )
            return
        self.api_env["STRIPE_WEBHOOK_SECRET"] = secret
        self._stripe_cli = cli

    def _start_stripe_listen(self) -> None:
        """Forward real test-mode webhooks to the local API (only after `_find_webhook_secret` found the CLI)."""
        cli = self._stripe_cli
        if self.mode != "stripe" or cli is None:
            return
        key = self.api_env["STRIPE_SECRET_KEY"].strip()
        self.listen_process = start_process(
            [cli, "listen", "--api-key", key, "--forward-to", self.webhook_url, "--events", ",".join(HANDLED_EVENTS)],
            self.env,
            "Stripe CLI",
        )
        self.notes.append(f"`stripe listen` forwards test-mode events to {self.webhook_url}.")

    def _start_page(self) -> None:
        from common.stripe_rules import API_VERSION

        publishable = self.env.get("STRIPE_PUBLISHABLE_KEY", "").strip() if self.mode == "stripe" else ""
        config = {
            "apiBase": self.api_url,
            "publishableKey": publishable,
            "stripeJsUrl": stripe_js_url(API_VERSION),
            "simulated": self.mode == "simulated",
            "simulateCommand": self.simulate_command("pay"),
            "pollIntervalMs": 2000,
        }
        if self.mode == "stripe" and not publishable.startswith("pk_test_"):
            self.notes.append("Set STRIPE_PUBLISHABLE_KEY=pk_test_… so the example page can mount Embedded Checkout.")
        page = ExamplePageServer(config, self.options.host, self.options.page_port)
        try:
            page.start()
        except OSError as error:
            raise PortInUse(
                f"The example page could not listen on port {self.options.page_port} ({error.strerror}); "
                "choose another with --page-port N."
            ) from error
        self.page = page

    def _write_env_file(self) -> None:
        """The settings `devtools.simulate` needs, readable by this user only."""
        values = {
            "API_URL": self.api_url,
            "WEBHOOK_URL": self.webhook_url,
            "STRIPE_API_BASE": self.api_env["STRIPE_API_BASE"],
            "STRIPE_SECRET_KEY": self.api_env["STRIPE_SECRET_KEY"],
            "STRIPE_WEBHOOK_SECRET": self.api_env["STRIPE_WEBHOOK_SECRET"],
        }
        for name in STORE_SETTINGS:
            if self.api_env.get(name):
                values[name] = self.api_env[name]
        lines = [
            "# Written by `python -m devtools.run_local` for `python -m devtools.simulate`.",
            "# Rewritten on every run and removed when it stops; the secrets are local-only.",
        ]
        lines += [f"{name}={shlex.quote(value)}" for name, value in values.items()]
        fd = os.open(self.env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(lines) + "\n")

    def _remove_env_file(self) -> None:
        try:
            text = self.env_file.read_text()
        except OSError:
            return
        if self.api_env.get("STRIPE_WEBHOOK_SECRET", "") in text:  # ours, not a newer run's
            self.env_file.unlink(missing_ok=True)

    # -- what to tell the user ---------------------------------------------

    def simulate_command(self, action: str) -> str:
        """The simulate command line for `action`, pointing at this run's dev.env when it is not the default."""
        command = f"{python_command()} -m devtools.simulate {action}"
        if self.env_file != DEFAULT_STATE_DIR / ENV_FILE_NAME:
            command += f" --env-file {shlex.quote(self._relative(self.env_file))}"
        return command

    def describe_store(self) -> str:
        choice = self.api_env.get("PAYMENTS_STORE", "")
        if choice.startswith("sqlite:///"):
            path = Path(choice[len("sqlite:///") :])
            try:
                path = path.relative_to(ROOT)
            except ValueError:
                pass
            return f"SQLite file {path}"
        if self.emulator is not None:
            return f"Firestore emulator at {self.emulator.host_port} (data is lost when it stops)"
        if self.api_env.get("FIRESTORE_EMULATOR_HOST"):
            return f"Firestore emulator at {self.api_env['FIRESTORE_EMULATOR_HOST']}"
        return "Firestore (project from the environment)"

    def banner(self) -> str:
        lines = ["", "Payments backend running locally. Ctrl-C stops everything.", ""]
        lines.append(f"  API            {self.api_url}   (functions-framework --target=api)")
        lines.append(f"  Example page   {self.page_url}/")
        if self.mode == "simulated":
            lines.append(f"  Stripe         stand-in at {self.api_env['STRIPE_API_BASE']}")
        elif self.api_env.get("STRIPE_API_BASE"):
            lines.append(f"  Stripe         STRIPE_API_BASE={self.api_env['STRIPE_API_BASE']}, test key")
        else:
            lines.append("  Stripe         real Stripe, TEST mode")
        lines.append(f"  Payment store  {self.describe_store()}")
        lines.append(f"  Webhook        {self.webhook_url}")
        lines.append("")
        if self.mode == "simulated":
            lines += [
                "Payments are SIMULATED: no STRIPE_SECRET_KEY is set, so no money moves and nothing leaves",
                "this machine. Open the example page and press Pay; it shows the session id. Then:",
                f"  {self.simulate_command('pay')} SESSION_ID     (also --async-succeed / --async-fail / --no-webhook)",
                f"  {self.simulate_command('expire')} SESSION_ID",
                f"  {self.simulate_command('refund')} SESSION_ID  (--amount CENTS for part of it)",
                f"  {self.simulate_command('dispute')} SESSION_ID (--lose or --win closes it)",
                "(`latest` instead of SESSION_ID picks the newest open session for pay and expire.)",
                f"Settings for simulate are in {self._relative(self.env_file)}.",
            ]
        else:
            lines += ["Trigger test events with the Stripe CLI, e.g. `stripe trigger checkout.session.completed`."]
        lines += [f"Note: {note}" for note in self.notes]
        return "\n".join(lines) + "\n"

    @staticmethod
    def _relative(path: Path) -> str:
        try:
            return str(path.relative_to(ROOT))
        except ValueError:
            return str(path)


# --------------------------------------------------------------------------
# Command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.run_local",
        description="Run the API, a Stripe stand-in (without STRIPE_SECRET_KEY), the payment store "
        "and the example page together. Ctrl-C stops everything.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--api-port", type=int, default=8080, help="API port (default 8080)")
    parser.add_argument("--page-port", type=int, default=5173, help="example page port (default 5173)")
    parser.add_argument("--stripe-port", type=int, default=12111, help="Stripe stand-in port (default 12111)")
    parser.add_argument(
        "--firestore",
        action="store_true",
        help="store payments in Google's Firestore emulator instead of SQLite (needs gcloud's "
        "cloud-firestore-emulator component and Java)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="where the SQLite store and dev.env live (default .local/)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop = threading.Event()
    received = []

    def on_signal(signum, frame):
        received.append(signum)
        stop.set()

    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
    stack = LocalStack(
        Options(
            host=args.host,
            api_port=args.api_port,
            page_port=args.page_port,
            stripe_port=args.stripe_port,
            firestore=args.firestore,
            state_dir=args.state_dir.resolve(),
        )
    )
    try:
        if stack.mode == "simulated":
            print("No STRIPE_SECRET_KEY: starting the local Stripe stand-in; payments are SIMULATED.", flush=True)
        stack.start()
        print(stack.banner(), flush=True)
        while not stop.wait(0.5):
            failed = stack.failed_process()
            if failed is not None:
                print(
                    f"The {failed[0]} stopped with exit code {failed[1]}; stopping everything.",
                    file=sys.stderr,
                    flush=True,
                )
                return 1
        print("Stopping…", flush=True)
        return 0
    except StartupError as error:
        print(f"run_local: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        stack.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main())
