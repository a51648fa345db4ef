"""The machine's available memory, read once here for every memory check (engine, Lava runs, training)."""
from __future__ import annotations


def available_bytes() -> int:
    """MemAvailable from /proc/meminfo (Linux), else psutil."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import psutil
    return int(psutil.virtual_memory().available)
