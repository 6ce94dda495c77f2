"""Domain errors: what a user can fix (a config, a source, a model file, a flag).

The CLI turns these into exit status 2 with the message alone. Anything else is a
bug and surfaces with its traceback, so a fault inside numpy or OpenCV is never
mistaken for a typo in a YAML file.
"""

from __future__ import annotations


class CrowdwatchError(Exception):
    """Base of every error a user can act on; the message says what to fix."""


class ConfigError(CrowdwatchError, ValueError):
    """A configured value that cannot be used (a bad setting, an unset secret variable)."""


class UsageError(CrowdwatchError, ValueError):
    """A command-line value or an input file given to a command that cannot be used."""


class SourceError(CrowdwatchError, RuntimeError):
    """A camera, video file or image sequence that cannot be opened or read."""


class ModelError(CrowdwatchError, ValueError):
    """A counting model or calibration that is missing, malformed or unusable."""
