"""The errors a stage reports as one line (bad input, bad config, an unreachable or misbehaving
service), as opposed to bugs, which keep their traceback. No dependencies: every stage imports it."""


class NightSkyNetError(Exception):
    """Base of the errors the command line reports in one line."""


class FetchError(NightSkyNetError):
    """A request that did not give an accepted answer. ``attempts`` is how many were made."""

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 0):
        super().__init__(message)
        self.status = status
        self.attempts = attempts


class PermanentError(FetchError):
    """An answer that retrying cannot change (bad request, not found)."""


class TransientError(FetchError):
    """An answer worth retrying (server busy, cut connection, bad body)."""

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 0, retry_after: float | None = None):
        super().__init__(message, status=status, attempts=attempts)
        self.retry_after = retry_after


class ServiceUnreachable(FetchError):
    """The service's host could not be reached at all: no connection was ever made (refused, no such
    host, connect timeout), so trying the remaining requests would only fail the same way, slowly."""


class SkyServerError(NightSkyNetError):
    """SkyServer answered, but not with data."""


class DemoSkyError(NightSkyNetError, ValueError):
    """The demo sky folder is missing or malformed."""


class InputError(NightSkyNetError, ValueError):
    """Input a stage cannot use: a missing path, a malformed table, nothing to work on."""


class SettingsError(NightSkyNetError, ValueError):
    """Settings that cannot work together (a crop larger than the cutout, a GPU that is not there)."""
