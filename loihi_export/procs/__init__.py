"""Custom Lava processes (spike recorder, fault injection), kept in their own package.

Lava's compiler finds a Process's models by executing every module in the
directory of the Process's module (``ProcGroupDiGraphs._find_proc_models``), so
processes defined next to ``build.py``/``run.py`` would make it re-execute those
too (and warn). Only modules that define Lava processes belong here.
"""
