"""Domain errors with stable codes, shared by every layer.

One grammar for messages: ``Invalid `<what>`: got `<value>`, must be <rule>``, with the
record, file, row or field named where there is one. The CLI maps any
:class:`CelltrialError` to exit code 1 and prints its message; the web API maps it to an
HTTP 4xx in one handler.
"""

from __future__ import annotations


class CelltrialError(Exception):
    """Base class: an input or data problem the user can fix (exit code 1)."""

    code: str = "CT000"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidValue(CelltrialError, ValueError):
    """A value outside what the rule admits (impossible lab value, unknown term, bad unit)."""

    code = "CT100"


def invalid(what: str, got: object, rule: str, *, code: str | None = None) -> InvalidValue:
    """Build an :class:`InvalidValue` in the project's one message grammar."""
    return InvalidValue(f"Invalid `{what}`: got `{got!r}`, must be {rule}", code=code)


class ProtocolError(CelltrialError):
    """A protocol file that cannot be loaded or fails lint with errors."""

    code = "CT200"


class StoreError(CelltrialError):
    """A write or import the store refused; nothing was written."""

    code = "CT300"


class NotComputable(CelltrialError):
    """A derived value that cannot be computed from the data; the message is the reason."""

    code = "CT400"
