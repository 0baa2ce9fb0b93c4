"""Exceptions that mean "the user gave bad input": the CLI prints them as one line, exit code 2."""
from __future__ import annotations

from t2i.config import ConfigError  # noqa: F401  (a ValueError)

# ValueError covers ConfigError, CheckpointError and PIL's UnidentifiedImageError (an OSError
# subclass, covered by OSError); OSError covers missing and unwritable files.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)
