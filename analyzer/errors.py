"""Exception hierarchy. Bad *input* raises one of these; bad *traffic* is data, never an exception.

The CLI turns every ``AnalyzerError`` into one error line and exit code 2.
"""


class AnalyzerError(Exception):
    """Base of every error the analyzer raises on purpose."""


class CaptureFormatError(AnalyzerError):
    """The input is not a capture we can read (bad magic, corrupt header, unreadable path)."""


class BackendUnavailable(AnalyzerError):
    """An external tool (tshark, kubectl) is missing, too old or not permitted."""


class TLSParseError(AnalyzerError):
    """The bytes are not well-formed TLS. Raised only inside ``analyzer.tls``; callers treat it as data."""
