"""The IR's error type (here so that ``sim.neurons`` and ``sim.ir`` share it without a cycle)."""
from __future__ import annotations


class IRError(ValueError):
    """An IR object is inconsistent; the message names the object and field."""

    def __init__(self, where: str, field_name: str, problem: str) -> None:
        self.where, self.field, self.problem = where, field_name, problem
        super().__init__(f"{where}: field '{field_name}': {problem}")
