"""run.py's side of worker.py: start a system's process in its environment and talk JSON lines."""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PEERS_PYTHON = HERE / ".venv" / "bin" / "python"


class WorkerError(RuntimeError):
    """The worker answered with an error, or died; the message says which and why."""


# What one request may take before the worker counts as hung: generous, as a 6 M-parameter
# peer samples a few hundred images at 1 thread in the quality part.
DEFAULT_TIMEOUT_S = 30 * 60


class Worker:
    """One worker process. `call(op, **kw)` sends a request and returns the answer (a dict).

    A worker that gives no answer within `timeout_s` is killed and the call raises WorkerError,
    so a hung peer costs its own row, not the whole run."""

    def __init__(self, system: str, *, python: str | Path, size: str, threads: int, log: Path) -> None:
        self.system, self.log_path = system, Path(log)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
               # the source tree's t2i (data, text encoder, scorer) for the peers' environment too
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TQDM_DISABLE": "1"}
        self.proc = subprocess.Popen([str(python), str(HERE / "worker.py"), "--system", system, "--size", size, "--threads", str(threads)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, env=env, cwd=ROOT, text=True, bufsize=1)

    def call(self, op: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, **kw) -> dict:
        if self.proc.poll() is not None:
            raise WorkerError(f"{self.system}: worker exited ({self.proc.returncode}); {self._tail()}")
        try:
            self.proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
            self.proc.stdin.flush()
            # one request, one answer line: nothing is left in the reader's buffer between calls,
            # so waiting on the pipe itself is exact
            if not select.select([self.proc.stdout], [], [], timeout_s)[0]:
                self.proc.kill()
                self.proc.wait()
                raise WorkerError(f"{self.system}: {op} gave no answer in {timeout_s:.0f} s; worker stopped. {self._tail()}")
            line = self.proc.stdout.readline()
        except (BrokenPipeError, OSError) as e:
            raise WorkerError(f"{self.system}: {e}; {self._tail()}") from None
        if not line:
            self.proc.wait()
            raise WorkerError(f"{self.system}: worker exited ({self.proc.returncode}) during {op}; {self._tail()}")
        out = json.loads(line)
        if not out.pop("ok"):
            raise WorkerError(f"{self.system}: {op}: {out['error']}")
        return out

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call("quit")
            except WorkerError:
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # our own child, by its handle
                self.proc.wait()
        self._log.close()

    def _tail(self) -> str:
        self._log.flush()
        lines = [ln for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()]
        return f"last log line: {lines[-1][:300]}" if lines else f"log: {self.log_path}"


def python_for(system: str) -> tuple[Path | None, str | None]:
    """(interpreter, None) for a system, or (None, why it cannot run)."""
    from systems import PEER_OF

    if system not in PEER_OF:
        return Path(sys.executable), None
    if not PEERS_PYTHON.exists():
        return None, f"no peers environment ({PEERS_PYTHON}); run `python bench/peers/setup_env.py`"
    return PEERS_PYTHON, None
