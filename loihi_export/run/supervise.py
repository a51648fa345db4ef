"""Run an AER graph in Lava safely: a worker process per chunk, a timeout, full cleanup.

Samples run ``batch_size`` side by side and ``sequence`` such groups one after another in one
network (``build``); large graphs default to one at a time, all in one worker, so memory does
not grow with the samples. The weights go to the worker as memory-mapped files
(``build.LavaWeights``). A run whose estimated peak memory exceeds what is available is
refused before it starts.

Lava runs each process in its own OS process, and a process model that raises
leaves lava-nc 0.10's runtime waiting forever. So every run happens in a worker
(``python -m loihi_export.worker.main``) started in its own session (process group);
the parent

* waits at most ``timeout`` seconds, and stops early when a Lava child has printed
  a traceback and the worker has not exited ``FAILURE_GRACE_S`` later (a run
  with a dead Lava process can never finish: every process takes part in every tick);
* on any failure kills the worker's whole process group, removes the POSIX
  shared-memory segments of that run that are still in /dev/shm (new since the
  start *and* logged by the worker as Lava created them — so segments of other
  runs going on at the same time are never touched), and raises
  :class:`LavaRunError` carrying Lava's own message (from the worker's stderr);
* on success does the same reaping and cleanup, so nothing is left behind;
* takes SIGTERM and SIGHUP like SIGINT while it runs (``sim.system.signals``): the
  exception runs the same cleanup (itself shielded from a second signal) and
  removes the work directory; if this process is SIGKILLed instead, the worker
  notices its parent's death and cleans up itself (``worker.die_with_parent``).
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from loihi_export.protocol import LavaRunError
from loihi_export.run.plan import MALLOC_ENV
from sim.system.signals import deferred_interrupts

SHM = Path("/dev/shm")


FAILURE_GRACE_S = 2.0


POLL_S = 0.1


MEMORY_SAMPLE_S = 1.0                      # stats: the worker's process list is refreshed this often


PAGE = os.sysconf("SC_PAGE_SIZE")


def _shm_entries() -> set[str]:
    return set(os.listdir(SHM)) if SHM.is_dir() else set()


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL every process of the worker's session, then reap the worker."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _remove_segments(log_file: Path, before: set[str]) -> None:
    """Unlink the segments the worker logged that are new since ``before`` and still present."""
    if not log_file.exists():
        return
    logged = {line.strip() for line in log_file.read_text().splitlines() if line.strip()}
    for name in (logged & _shm_entries()) - before:
        try:
            (SHM / name).unlink()
        except OSError:
            pass


def error_text(stderr: str) -> str:
    """The most telling lines of a worker's stderr: the exception lines, else the tail."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line.strip() for line in lines
              if ("Error" in line or "Exception" in line) and not line.startswith(" ")]
    picked = errors[-3:] if errors else lines[-5:]
    return " | ".join(dict.fromkeys(picked)) or "(no output)"


def _pss(pid: int) -> tuple[int, int]:
    """(proportional set size, its anonymous + shared-memory part) of one process, bytes; (0, 0) if gone.

    PSS splits pages shared between processes (Lava forks every OS process from the
    worker) among them, so the sum over a process tree is its real footprint. The
    second figure leaves out file pages (the memory-mapped weights: page cache, which
    the kernel can drop and re-read)."""
    fields = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:                     # "Pss_Anon:   1234 kB" (the first line is the address range)
                key, *rest = line.split()
                if key.endswith(":") and len(rest) == 2 and rest[1] == "kB":
                    fields[key[:-1]] = int(rest[0]) * 1024
    except (OSError, ValueError):
        return 0, 0
    return fields.get("Pss", 0), fields.get("Pss_Anon", 0) + fields.get("Pss_Shmem", 0)


def _rss(pid: int) -> int:
    """Resident set size of one process, bytes (``/proc/PID/statm``: cheap); 0 if gone."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return 0


class TreeMemory:
    """Peak PSS of this process plus a worker's process tree.

    ``poll`` (every few tenths of a second) sums the tree's RSS (``statm``: microseconds per
    process). RSS counts the pages Lava's forked processes share once per process, so only
    PSS (``smaps_rollup``: a page-table walk, ~1–3 ms per process) gives the footprint; it is
    sampled when the RSS sum reaches a new high (memory being allocated: the peak is then
    seen when it happens, e.g. the first tick's weight conversion in every Sparse process)
    and at least every ``MEMORY_SAMPLE_S``·10, spaced so PSS sampling takes ≤ 25 % of a core."""

    def __init__(self) -> None:
        self.peak = self.peak_anon = self.peak_worker = self.processes = 0
        self.samples, self.seconds = 0, 0.0
        self._tree: list[int] = []
        self._tree_at = self._pss_at = -1e9
        self._rss_high = 0
        self._cost = 0.0

    def poll(self, worker_pid: int, now: float) -> None:
        import psutil

        if now - self._tree_at >= MEMORY_SAMPLE_S:
            try:
                self._tree = [worker_pid] + [c.pid for c in psutil.Process(worker_pid).children(recursive=True)]
            except psutil.Error:
                return
            self._tree_at = now
            self.processes = max(self.processes, len(self._tree))
        rss = sum(_rss(pid) for pid in self._tree)
        rising = rss > self._rss_high * 1.005
        self._rss_high = max(self._rss_high, rss)
        if now - self._pss_at < max(4 * self._cost, MEMORY_SAMPLE_S / 4):
            return
        if rising or now - self._pss_at >= 10 * MEMORY_SAMPLE_S:
            self.sample()

    def sample(self) -> None:
        t0 = time.monotonic()
        own = _pss(os.getpid())
        worker = [_pss(pid) for pid in self._tree]
        total, anon = own[0] + sum(w[0] for w in worker), own[1] + sum(w[1] for w in worker)
        self.peak, self.peak_anon = max(self.peak, total), max(self.peak_anon, anon)
        self.peak_worker = max(self.peak_worker, sum(w[0] for w in worker))
        self._pss_at = time.monotonic()
        self._cost = self._pss_at - t0
        self.samples, self.seconds = self.samples + 1, self.seconds + self._cost


def supervise(cmd: list[str], workdir: Path, timeout: float, memory: TreeMemory | None = None) -> str:
    """Run a Lava worker command (``python -m ...``; it must log its shared-memory segments to
    ``workdir/shm.txt``) in its own session, under the rules of the module doc; return its stderr.

    Raises :class:`LavaRunError` (with Lava's own message) on a timeout, a Lava process that raised,
    or a non-zero exit. Whatever happens, the worker's process group is killed and reaped and its
    segments removed."""
    err_file, shm_log = workdir / "stderr.txt", workdir / "shm.txt"
    shm_log.unlink(missing_ok=True)
    root = str(Path(__file__).resolve().parents[1])
    env = {**MALLOC_ENV, **os.environ,
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    shm_before = _shm_entries()
    start, failed_at, reason = time.monotonic(), None, None
    with open(err_file, "w") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True, env=env, cwd=root)
    try:
        while proc.poll() is None:
            now = time.monotonic()
            if now - start > timeout:
                reason = f"timed out after {timeout:g} s"
                break
            if failed_at is None and "Traceback" in err_file.read_text(errors="replace"):
                failed_at = now
            if failed_at is not None and now - failed_at > FAILURE_GRACE_S:
                reason = "a Lava process raised and the runtime did not stop (it never does in lava-nc 0.10)"
                break
            if memory is not None:
                memory.poll(proc.pid, now)
            time.sleep(POLL_S)
    finally:
        with deferred_interrupts():                 # a second signal must not stop the cleanup
            _kill_group(proc)
            _remove_segments(shm_log, shm_before)
    stderr = err_file.read_text(errors="replace")
    if reason is None and proc.returncode != 0:
        reason = f"worker exited with code {proc.returncode}"
    if reason:
        raise LavaRunError(f"Lava run failed ({reason}): {error_text(stderr)}")
    return stderr
