"""Child processes of a bench run: start, wait until healthy, measure (CPU, peak RSS), stop."""
from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env() -> dict[str, str]:
    """The environment of bench children: the repository importable (the example bot lives there)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


@dataclass(frozen=True)
class Pinning:
    """Which cores the server under test runs on, and which the load generator and the fake API (and the
    runner itself) run on. Children inherit their affinity: a server's ``--workers`` forks stay on its core."""

    server: frozenset[int]
    load: frozenset[int]

    @classmethod
    def choose(cls, cpus: str | None = None) -> Pinning | None:
        """``cpus`` as ``"S,L"`` (a core each); default: the first two cores this process may use. None
        when fewer than two are available (then nothing is pinned)."""
        if cpus:
            server, load = (int(part) for part in cpus.split(","))
            return cls(frozenset({server}), frozenset({load}))
        allowed = sorted(os.sched_getaffinity(0))
        if len(allowed) < 2:
            return None
        return cls(frozenset({allowed[0]}), frozenset({allowed[1]}))

    def describe(self) -> dict[str, list[int]]:
        return {"server": sorted(self.server), "load": sorted(self.load)}


def on_cores(cpus: frozenset[int] | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that pins the child (before it runs, so its forks inherit the pinning)."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


@dataclass
class Child:
    """A child process and the files its output goes to."""

    name: str
    process: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def tree(self) -> list[int]:
        """This process and its descendants (``--workers`` forks)."""
        return [self.pid, *descendants(self.pid)]

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.tree())

    def peak_rss(self) -> int:
        """Sum of the peak resident set sizes (VmHWM) of the process and its descendants, in bytes."""
        return sum(status_kib(pid, "VmHWM") * 1024 for pid in self.tree())

    def stop(self, timeout: float = 20.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def spawn(name: str, argv: list[str], logs: Path, *, cpus: frozenset[int] | None = None, cwd: Path | None = None,
          env: Mapping[str, str] | None = None) -> Child:
    """Start ``argv`` with its output in ``logs/<name>.log``, on ``cpus`` when given; ``env`` is added to
    the bench children's environment."""
    log = logs / f"{name}.log"
    out = log.open("wb")
    process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=child_env() | dict(env or {}),
                               cwd=cwd or REPO, preexec_fn=on_cores(cpus))
    out.close()
    return Child(name, process, log)


def python(*module_args: str) -> list[str]:
    return [sys.executable, "-m", *module_args]


def wait_healthy(child: Child, url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise RuntimeError(f"{child.name} exited with status {child.process.returncode}:\n{child.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{child.name} was not healthy at {url} within {timeout}s:\n{child.tail()}")


def wait_listening(child: Child, port: int, timeout: float = 30.0) -> None:
    """For a server without a health URL (a peer framework's): wait until its port accepts connections."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise RuntimeError(f"{child.name} exited with status {child.process.returncode}:\n{child.tail()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{child.name} did not listen on port {port} within {timeout}s:\n{child.tail()}")


def get_json(url: str) -> object:
    import orjson

    with urllib.request.urlopen(url, timeout=5.0) as answer:
        return orjson.loads(answer.read())


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def named_cpu_seconds(names: tuple[str, ...]) -> float:
    """CPU seconds of every process whose command name is one of ``names`` (a store's server)."""
    if not names:
        return 0.0
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in names:
                    total += cpu_seconds(int(entry.name))
            except OSError:
                continue
    return total


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def machine_busy_seconds() -> float:
    """CPU seconds the machine's cores have spent running processes (or stolen by the hypervisor) since
    boot. Interrupt time is left out: loopback traffic's softirqs are the bench's own work but are
    charged to no process."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, _irq, _softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + steal) / CLOCK_TICKS


def children_cpu_seconds() -> float:
    """CPU seconds of this process's children that have ended (the load generator's runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
