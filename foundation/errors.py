"""Errors a user can fix. The CLI prints their message as one line and exits with code 2."""


class TeachloopError(ValueError):
    """Base of every error whose message tells the user how to fix the problem."""


class ConfigError(TeachloopError):
    """A config value, CLI option, model path or environment name that cannot be used."""


class RunDirError(TeachloopError):
    """A run directory that cannot be created, written, or resumed."""


class PluginError(TeachloopError):
    """An environment plug-in that fails to load or breaks its contract."""


class TrainingError(TeachloopError):
    """A training run that failed outside the loop's process (the accelerate launcher)."""


class ResourceError(TeachloopError):
    """The machine ran out of memory or disk mid-run. The run directory is intact: free the
    resource (or lower a batch size), then ``teachloop resume`` continues the run. Exit code 3."""
