"""The one error type users see for bad input: it names the config key to change."""


class ConfigError(ValueError):
    """A config value is invalid; raised before any expensive work.

    Args:
        key: dotted config key the user must change (e.g. ``forget.fraction``).
        message: what is wrong and what would be valid.
    """

    def __init__(self, key: str, message: str):
        self.key = key
        self.message = message
        super().__init__(f"Invalid config `{key}`: {message}")

    def __reduce__(self):
        # A sweep job's error travels back pickled (submitit, joblib); the default reduce
        # would call ConfigError(full_text) and fail for want of the second argument.
        return type(self), (self.key, self.message)
