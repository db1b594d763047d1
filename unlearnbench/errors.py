"""Errors users can fix: each names the config key to change, and the command prints it as
one line (no traceback) and exits with status 2."""


class UnlearnbenchError(Exception):
    """A run stopped for a reason the user can act on; ``key`` is the config key to change.

    Args:
        key: dotted config key the user must change (e.g. ``method.lr``).
        message: the whole one-line message.
    """

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(message)

    def __reduce__(self):
        # A sweep job's error travels back pickled (submitit, joblib); the default reduce would
        # call the subclass with the message alone, which its signature does not accept.
        return _restore, (type(self), self.args, self.__dict__)


def _restore(cls, args, state):
    err = Exception.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err


class ConfigError(UnlearnbenchError, ValueError):
    """A config value is invalid; raised before any expensive work.

    Args:
        key: dotted config key the user must change (e.g. ``forget.fraction``).
        message: what is wrong and what would be valid.
    """

    def __init__(self, key: str, message: str):
        self.message = message  # without the prefix: re-raised under another key
        super().__init__(key, f"Invalid config `{key}`: {message}")


class Diverged(UnlearnbenchError):
    """Training or unlearning produced non-finite weights or outputs; nothing is written.

    Args:
        stage: what diverged (``original training``, ``method``, ...).
        key: the config key to lower (``train.lr``, ``method.lr``).
        detail: where the first non-finite value appeared.
    """

    def __init__(self, stage: str, key: str, detail: str):
        advice = f"lower `{key}`" if key.endswith("lr") else f"change `{key}`"
        super().__init__(key, f"{stage} diverged ({detail}): {advice}")


class DataError(UnlearnbenchError):
    """A data file is missing, damaged or inconsistent; ``key`` says which setting locates it."""

    def __init__(self, key: str, message: str):
        super().__init__(key, f"Bad data (`{key}`): {message}")
