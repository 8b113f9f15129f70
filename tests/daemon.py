"""Running a real ``ticketd serve`` for tests — in this process through its shutdown
trigger, or as a process where a test needs signals — the config it runs with (``DaemonSetup``,
written by the ``ticketd`` fixture of ``conftest.py``), and a TCP proxy to cut a database off.

``ticketd`` processes (``serve_process``, ``start_ticketd``, ``run_ticketd``) are forked from
a helper process that imported ticketd once (``_Forks``): 1.5 to 2 s of CPU saved on each."""

from __future__ import annotations

import asyncio
import atexit
import itertools
import json
import logging
import multiprocessing
import multiprocessing.context
import os
import select
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Protocol

import tomli_w

import ticketing
from ticketing.config import load_config
from ticketing.logs import quiet_libraries
from ticketing.server.daemon import Daemon, build
from ticketing.store.db import create_db_engine

SECRET_ENV = {"TICKETD_TOKEN_SECRET": "t" * 40}


# The shipped default runs a worker process a core (``[smtp] workers = "auto"``), and each
# costs a second of CPU to start: the tests' daemons record mail themselves unless a test
# asks for workers.  tests/journeys/test_shipped_default.py plays the default as shipped.
TEST_WORKERS = {"workers": 0}
# No console unless a test asks: its default port (8025) would be shared by every daemon.
TEST_WEB = {"port": 0}


# Load tests send hundreds of new escalations from a handful of senders in seconds:
# past [limits] new_incidents_per_sender_hour they would be held back as abuse.
UNLIMITED_INCIDENTS = "[limits]\nnew_incidents_per_sender_hour = 1000000\n"


def process_context() -> multiprocessing.context.ForkServerContext:
    """Processes for a test that races them against each other: forked from a server
    process that imported ticketd once (``tests.daemon``), not spawned (a spawned process
    imports ticketd anew, ~1 s of CPU, before it does anything)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.daemon"])  # once the server runs, this changes nothing
    return context


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ticketd_command(*args: str) -> list[str]:
    """The command line of ``ticketd ARGS`` run by this interpreter."""
    return [sys.executable, "-m", "ticketing", *args]


class Polled(Protocol):
    def poll(self) -> int | None: ...


def wait_for_port(port: int, proc: Polled, timeout: float = 60) -> None:
    _wait_for(port, lambda: proc.poll() is not None, timeout)


@contextmanager
def serving(config: Path, port: int, log: Path) -> Iterator[None]:
    """The daemon ``ticketd serve`` builds from ``config``, run in this process until the
    block ends (its shutdown trigger), its log appended to ``log``.  Tests that need
    signals, SIGKILL or a process of its own use ``serving_process``."""
    with _environment(SECRET_ENV), _log_to(log):
        loaded = load_config(config)
        engine = create_db_engine(loaded.config.database)
        try:
            daemon = build(loaded.config, str(config), engine)
            with _running(daemon, port):
                yield
        finally:
            engine.dispose()


@contextmanager
def _running(daemon: Daemon, port: int) -> Iterator[None]:
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            loop.run_until_complete(daemon.run(stop.wait))
        except BaseException as exc:  # noqa: BLE001  handed to the test below
            failure.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="ticketd-serve")
    thread.start()
    try:
        _wait_for(port, lambda: not thread.is_alive())
        yield
    finally:
        if not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        thread.join(60)
    assert not thread.is_alive(), "ticketd serve did not stop"
    if failure:
        raise failure[0]


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def _log_to(path: Path) -> Iterator[None]:
    """What ``serve`` logs to stderr, appended to ``path`` (INFO and up, as the CLI sets)."""
    root = logging.getLogger()
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    quiet_libraries()
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


def _wait_for(port: int, died: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if died():
            raise AssertionError("ticketd serve stopped before listening (see its log)")
        with suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        time.sleep(0.05)
    raise AssertionError("ticketd did not start listening")


@contextmanager
def serving_process(config: Path, port: int, log: Path) -> Iterator[ForkedProcess]:
    """``ticketd serve`` as a process of its own (``start_ticketd``) until the block ends
    (SIGTERM), its stderr appended to ``log``."""
    proc = start_ticketd("--config", str(config), "serve", stderr=log)
    try:
        wait_for_port(port, proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def send(
    port: int,
    raw: bytes,
    sender: str = "sam@brokers.example",
    rcpt: str = "escalations@exchange.example",
) -> tuple[int, str]:
    """One message in its own SMTP session; the first refusal or the DATA reply."""
    try:
        return smtp_session(port, raw, sender, [rcpt])
    except (smtplib.SMTPServerDisconnected, ConnectionError, OSError) as exc:
        return 0, type(exc).__name__


def smtp_session(
    port: int,
    raw: bytes,
    sender: str,
    rcpts: Sequence[str],
    *,
    helo: str = "producer.example",
    source: tuple[str, int] | None = None,
) -> tuple[int, str]:
    """MAIL, RCPT for each of ``rcpts``, DATA: the first refusal, or the reply to DATA."""
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30, source_address=source) as client:
            client.ehlo(helo)
            replies = itertools.chain([client.mail(sender)], (client.rcpt(rcpt) for rcpt in rcpts))
            for code, text in replies:
                if code >= 400:
                    return code, text.decode(errors="replace")
            code, text = client.data(raw)
            return code, text.decode(errors="replace")
    except smtplib.SMTPResponseException as exc:
        error = exc.smtp_error
        reply = error.decode(errors="replace") if isinstance(error, bytes) else error
        return exc.smtp_code, reply


def wait_until(condition: Callable[[], bool], timeout: float = 30) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; its last answer.
    Every 50 ms: what the tests wait for (a row, a file, a log line) is cheap to look at."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


# --- the config of a daemon --------------------------------------------------------------------


def daemon_config(path: Path, db_url: str, port: int, *sections: str) -> Path:
    """Write the config ``path`` of a daemon on ``db_url`` that listens for SMTP on ``port``:
    ``[database] url`` and ``[smtp] port``, then ``sections`` (TOML texts, merged in order:
    tables merge key by key, a later value replaces an earlier one)."""
    merged: dict[str, Any] = {
        "database": {"url": db_url},
        "smtp": {"port": port, **TEST_WORKERS},
        "web": dict(TEST_WEB),
    }
    for text in sections:
        parsed = tomllib.loads(text)
        for table, key, argument in (("database", "url", "db_url"), ("smtp", "port", "port")):
            if key in parsed.get(table, {}):
                raise ValueError(f"[{table}] {key} is not a section's to set: pass {argument}=")
        _merge(merged, parsed)
    path.write_text(tomli_w.dumps(merged), encoding="utf-8")
    return path


def _merge(into: dict[str, Any], more: dict[str, Any]) -> None:
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


@dataclass(frozen=True)
class DaemonSetup:
    """A daemon's config file, the SMTP port it listens on and the log its runs append to."""

    config: Path
    port: int
    log: Path

    def serve(self) -> AbstractContextManager[None]:
        """The daemon run in this process for the block (``serving``)."""
        return serving(self.config, self.port, self.log)

    def serve_process(self) -> AbstractContextManager[ForkedProcess]:
        """The daemon as a process of its own for the block (``serving_process``)."""
        return serving_process(self.config, self.port, self.log)

    def send(
        self,
        raw: bytes,
        sender: str = "sam@brokers.example",
        rcpt: str = "escalations@exchange.example",
    ) -> tuple[int, str]:
        """One message to the daemon in its own SMTP session (``send``)."""
        return send(self.port, raw, sender, rcpt)


class Ticketd(Protocol):
    """The ``ticketd`` fixture: writes a daemon's config and returns its ``DaemonSetup``."""

    def __call__(
        self,
        *sections: str,
        port: int | None = None,
        db_url: str | None = None,
        folder: Path | None = None,
    ) -> DaemonSetup: ...


class TcpProxy:
    """Forwards a loopback port to a server; ``stop`` cuts every connection, like an outage."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.port = free_port()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        for sock in [self._listener, *self._sockets]:
            if sock is not None:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        self._sockets.clear()
        self._listener = None

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def import_roster(
    config: Path, folder: Path, rows: str = "1234567,sam amsung,sam@brokers.example\n"
) -> None:
    """``ticketd producers import`` of a small roster (CSV rows after the header)."""
    roster = folder / "roster.csv"
    roster.write_text("npn,name,email\n" + rows)
    run_ticketd("--config", str(config), "producers", "import", str(roster), check=True)


def serve_refused(config: Path, *, with_secret: bool = True) -> tuple[int, str]:
    """Run ``ticketd serve`` expecting it to refuse to start: exit code, last stderr line.
    ``with_secret=False`` runs it without the token secret in the environment."""
    env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
    result = run_ticketd(
        "--config",
        str(config),
        "serve",
        env={**env, **SECRET_ENV} if with_secret else env,
        timeout=60,
    )
    lines = result.stderr.decode().strip().splitlines()
    return result.returncode, lines[-1] if lines else ""


# --- ``ticketd`` in child processes that skip the imports ------------------------------------


class _Forks:
    """``ticketd ARGS`` in processes of their own, forked from a helper process that imported
    ticketd once: ``python -m ticketing`` spends 1.5 to 2 s of CPU importing before it does
    anything, and the tests start some hundred such processes.  The child is what the
    ``ticketd`` entry point is from there on (``ticketing.cli.main``): its own stdin (a file
    given, else /dev/null), stdout and stderr files, environment, working folder and
    ``sys.argv``; its exit status that of ``main``'s ``SystemExit`` (1 and a traceback on
    stderr for anything else raised, -N for signal N); the interpreter's exit handlers run.
    One helper for each test process, started on first use; it reaps its children and
    reports their exit statuses."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # starting the helper, writing requests
        self._helper: subprocess.Popen[bytes] | None = None
        self._folder: Path | None = None
        self._count = 0
        self._replies: dict[int, dict[str, int]] = {}
        self._changed = threading.Condition()
        self._gone: subprocess.Popen[bytes] | None = None

    def start(
        self,
        args: Sequence[str],
        env: dict[str, str],
        stdin: Path | None = None,
        stdout: Path | None = None,
        stderr: Path | None = None,
        append: bool = False,
    ) -> ForkedProcess:
        """Fork ``ticketd ARGS``; its stdout and stderr go to the files (/dev/null if
        None), appended to with ``append``."""
        with self._lock:
            helper = self._started()
            self._count += 1
            number = self._count
            request = {
                "id": number,
                "args": list(args),
                "env": env,
                "cwd": os.getcwd(),
                "in": str(stdin or os.devnull),
                "out": str(stdout or os.devnull),
                "err": str(stderr or os.devnull),
                "append": append,
            }
            assert helper.stdin is not None
            helper.stdin.write(json.dumps(request).encode() + b"\n")
            helper.stdin.flush()
        pid = self.reply(number, "pid", time.monotonic() + 60)
        if pid is None:
            raise AssertionError(f"the fork helper did not answer: see {self._folder}/helper.log")
        return ForkedProcess(self, number, pid, ["ticketd", *args])

    def run(
        self, args: Sequence[str], stdin: bytes | None, env: dict[str, str], timeout: float
    ) -> subprocess.CompletedProcess[bytes]:
        """``ticketd ARGS`` to its end: its exit status, stdout and stderr."""
        with self._lock:
            self._started()
            folder = self._folder
            assert folder is not None
            self._count += 1
            files = {name: folder / f"run{self._count}.{name}" for name in ("in", "out", "err")}
        if stdin is not None:
            files["in"].write_bytes(stdin)
        try:
            child = self.start(
                args,
                env,
                stdin=files["in"] if stdin is not None else None,
                stdout=files["out"],
                stderr=files["err"],
            )
            try:
                code = child.wait(timeout)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
                raise
            return subprocess.CompletedProcess(
                ["ticketd", *args], code, files["out"].read_bytes(), files["err"].read_bytes()
            )
        finally:
            for path in files.values():
                path.unlink(missing_ok=True)

    def reply(self, number: int, key: str, deadline: float | None) -> int | None:
        """The helper's ``key`` (``pid``, ``code``) about child ``number``, waited for until
        ``deadline`` (for ever: None); None if it has not come by then."""
        with self._changed:
            while key not in self._replies.get(number, {}):
                if self._gone is not None and self._gone is self._helper:
                    raise AssertionError(f"the fork helper died: see {self._folder}/helper.log")
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._changed.wait(left)
            value = self._replies[number][key]
            if key == "code":
                del self._replies[number]
            return value

    def _started(self) -> subprocess.Popen[bytes]:
        if self._helper is None or self._helper.poll() is not None:
            self._folder = Path(tempfile.mkdtemp(prefix="ticketd-forks-"))
            with (self._folder / "helper.log").open("ab") as log:
                self._helper = subprocess.Popen(
                    [sys.executable, "-c", "from tests.daemon import serve_forks; serve_forks()"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    cwd=Path(__file__).resolve().parents[1],
                )
            reader = threading.Thread(
                target=self._read, args=(self._helper,), name="fork-helper", daemon=True
            )
            reader.start()
            atexit.register(self.close)
        return self._helper

    def _read(self, helper: subprocess.Popen[bytes]) -> None:
        assert helper.stdout is not None
        for line in helper.stdout:
            reply = json.loads(line)
            number = reply.pop("id")
            with self._changed:
                self._replies.setdefault(number, {}).update(reply)
                self._changed.notify_all()
        with self._changed:
            self._gone = helper
            self._changed.notify_all()

    def close(self) -> None:
        helper, self._helper = self._helper, None
        if helper is not None and helper.stdin is not None:
            helper.stdin.close()
            helper.wait(30)
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)


_FORKS = _Forks()


class ForkedProcess:
    """A ``ticketd`` process forked by ``_Forks``: what the tests use of
    ``subprocess.Popen`` (``pid``, ``poll``, ``wait``, ``send_signal``, ``terminate``, ``kill``)."""

    def __init__(self, forks: _Forks, number: int, pid: int, args: list[str]) -> None:
        self._forks, self._number = forks, number
        self.pid, self.args = pid, args
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._forks.reply(self._number, "code", time.monotonic())
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            deadline = None if timeout is None else time.monotonic() + timeout
            self.returncode = self._forks.reply(self._number, "code", deadline)
            if self.returncode is None:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:  # not reaped yet: the pid is still this child's
            # the fork server may reap it between the poll and the signal: nothing to signal
            with suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def start_ticketd(*args: str, stderr: Path, env: dict[str, str] | None = None) -> ForkedProcess:
    """``ticketd ARGS`` as a process of its own (forked, ``_Forks``), its stderr appended to
    ``stderr``, as ``subprocess.Popen(ticketd_command(*args), stderr=...)`` would start it;
    ``env`` defaults to this environment with the token secret."""
    stderr.touch()  # there from the start, as a file a Popen's stderr is opened on
    return _FORKS.start(
        args, {**os.environ, **SECRET_ENV} if env is None else env, stderr=stderr, append=True
    )


def run_ticketd(
    *args: str,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    check: bool = False,
) -> subprocess.CompletedProcess[bytes]:
    """``ticketd ARGS`` run to its end in a process of its own (forked, ``_Forks``), as
    ``subprocess.run(ticketd_command(*args), input=stdin, capture_output=True, env=env)``
    would; ``env`` defaults to this environment with the token secret."""
    result = _FORKS.run(args, stdin, {**os.environ, **SECRET_ENV} if env is None else env, timeout)
    if check and result.returncode:
        raise AssertionError(
            f"ticketd {' '.join(args)}: exit {result.returncode}: {result.stderr!r}"
        )
    return result


def serve_forks() -> None:
    """The helper of ``_Forks``: JSON requests in, a line at a time; for each, a child
    forked, and two lines out: its pid, then its exit status once it has ended."""
    import ticketing.cli.app  # noqa: F401  loaded once here, not in every child
    from ticketing.cli import main
    from ticketing.server import daemon  # noqa: F401  serve loads it when it runs: here, once

    children: dict[int, int] = {}  # pid: request id
    pending = b""
    while True:
        ready, _, _ = select.select([0], [], [], 0.02 if children else None)
        if ready:
            data = os.read(0, 65536)
            if not data:
                return  # the tests have ended; children still running carry on
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    _forked_command(main, request)
                children[pid] = request["id"]
                _answer({"id": request["id"], "pid": pid})
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            if pid in children:
                _answer({"id": children.pop(pid), "code": os.waitstatus_to_exitcode(status)})


_MAIN = Path(ticketing.__file__).with_name("__main__.py")


def _answer(reply: dict[str, int]) -> None:
    os.write(1, json.dumps(reply).encode() + b"\n")


def _forked_command(main: Callable[[list[str]], None], request: dict[str, Any]) -> NoReturn:
    """In the forked child: what ``ticketd ARGS`` does, then exit with its status."""
    code = 1
    try:
        written = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if request["append"] else os.O_TRUNC)
        for fd, path, flags in (
            (0, request["in"], os.O_RDONLY),
            (1, request["out"], written),
            (2, request["err"], written),
        ):
            handle = os.open(path, flags, 0o600)
            os.dup2(handle, fd)
            os.close(handle)
        # the standard streams anew, as an interpreter starting on these files opens them
        sys.stdin = open(0, closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", errors="backslashreplace", closefd=False)  # noqa: SIM115
        sys.argv = [str(_MAIN), *request["args"]]  # as ``python -m ticketing ARGS`` has it
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        try:
            main(request["args"])
            code = 0
        except SystemExit as exc:
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
        atexit._run_exitfuncs()
    except BaseException:  # noqa: BLE001  as the interpreter reports it: on stderr, status 1
        traceback.print_exc()
        code = 1
    finally:
        with suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
