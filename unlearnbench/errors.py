"""The one error type users see for bad input: it names the config key to change."""


class ConfigError(ValueError):
    """A config value is invalid; raised before any expensive work.

    Args:
        key: dotted config key the user must change (e.g. ``forget.fraction``).
        message: what is wrong and what would be valid.
    """

    def __init__(self, key: str, message: str):
        self.key, self.message = key, message
        super().__init__(f"Invalid config `{key}`: {message}")
