"""The exceptions that mean "the input is bad", as opposed to a bug in t2i.

The CLI prints an InputError (or an OSError: a missing, unreadable or unwritable file) as one
line with exit code 2; any other exception is a bug and keeps its traceback. InputError is a
ValueError, so `except ValueError` in user code still catches everything it caught before.
"""
from __future__ import annotations


class InputError(ValueError):
    """A value, file or setting given to t2i that it cannot use; the message says which and why."""


class UsageError(InputError):
    """Bad command-line input, detected by the CLI itself."""


USER_ERRORS: tuple[type[BaseException], ...] = (InputError, OSError)  # PIL's UnidentifiedImageError is an OSError
