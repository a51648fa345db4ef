"""What the parent process and the Lava worker share (importable without importing Lava).

The parent (``loihi_export.run``) starts ``python -m loihi_export.worker.main`` per chunk;
the worker writes its spikes to files, graded payloads under names starting with
``PAYLOAD_PREFIX``; ``FAULT_KINDS`` name the faults a test may inject (``build.faults``).
"""
from __future__ import annotations


class LavaRunError(RuntimeError):
    """A Lava run failed or timed out; the message carries Lava's own error text."""


PAYLOAD_PREFIX = "payload:"
FAULT_KINDS = ("raise", "float-lif")       # see loihi_export.procs.faults
WORKER_MODULE = "loihi_export.worker.main"
NETX_WORKER_MODULE = "loihi_export.netx.run"
