"""One loopback fake in a process of its own, so the client under test keeps its CPU time to
itself and the fakes' cost can be read apart (from /proc).

    python benchmarks/perfkit/fakes.py crm|genesys [--latency SECONDS] [--customers N]

The CRM knows the demo customers, and ``CUST-0000`` to ``CUST-<N-1>`` with ``--customers N``.

Prints the fake's URL on one line, then serves until its standard input closes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Self

_TICK = os.sysconf("SC_CLK_TCK")


class FakeProcess:
    """A fake started with :meth:`start` (or as a context manager) and stopped by closing it."""

    def __init__(
        self, kind: str, *, latency: float = 0.0, customers: int = 0, python: str = sys.executable
    ) -> None:
        self.kind = kind
        self.latency = latency
        self._command = [python, str(Path(__file__)), kind, "--latency", str(latency)]
        self._command += ["--customers", str(customers)]
        self._process: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> Self:
        self._process = subprocess.Popen(  # noqa: S603 - our interpreter, our script
            self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        self.url = self._process.stdout.readline().strip()
        if not self.url.startswith("http://"):
            msg = f"the fake {self.kind} did not start: {self.url!r}"
            raise RuntimeError(msg)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._process is not None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            self._process.wait(timeout=10)

    def cpu_seconds(self) -> float:
        """User and system CPU time the fake's process has used so far."""
        assert self._process is not None
        fields = Path(f"/proc/{self._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("crm", "genesys"))
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--customers", type=int, default=0)
    args = parser.parse_args()
    from genesys_enrich.testing import DEMO_CUSTOMERS, FakeCrm, FakeGenesys

    known = dict(DEMO_CUSTOMERS)
    record = DEMO_CUSTOMERS["CUST-1001"]
    for number in range(args.customers):
        known[f"CUST-{number:04d}"] = record | {"crmAccountId": f"ACCT-{number}"}
    fake = (
        FakeCrm(known, latency=args.latency)
        if args.kind == "crm"
        else FakeGenesys(latency=args.latency)
    )
    with fake:
        print(fake.url, flush=True)
        sys.stdin.read()  # until the parent closes it


if __name__ == "__main__":
    main()
