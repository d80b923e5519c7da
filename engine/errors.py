"""Errors and warnings the engine raises for bad input."""

from __future__ import annotations

from pathlib import Path


class CardioInputError(ValueError):
    """Bad input: names the thing (file, argument, checkpoint) and the problem in one message."""

    def __init__(self, thing: str | Path, problem: str) -> None:
        self.thing = str(thing)
        self.problem = problem
        super().__init__(f"{self.thing}: {problem}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # pool workers send errors back pickled; the default would call __init__(message)
        return (type(self), (self.thing, self.problem))


class CardioWarning(UserWarning):
    """Something the user should know (e.g. conditions outside the training range)."""
