"""mtls-analyzer: wire-level proof of (Linkerd) mTLS from packet captures.

>>> from analyzer import analyze
>>> report = analyze("captures/demo-transparent.pcapng")   # doctest: +SKIP
>>> report.flows[["client_ip", "server_ip", "verdict", "reason"]]   # doctest: +SKIP
>>> report = analyze("captures/demo-transparent.pcapng", pods="captures/demo-transparent.pods.json")  # doctest: +SKIP
>>> report.flows_with_pods()[["src", "dst", "verdict", "flow_status"]]   # doctest: +SKIP
>>> report.audit(fail_on=["unexpected-plaintext"])["policy"]["result"]   # doctest: +SKIP
>>> report.evidence(10).client   # the first bytes the client sent   # doctest: +SKIP

The core (capture, flows, tls, analysis, pipeline, report rows) is standard library only; pandas is
imported when a DataFrame is asked for.
"""

from .errors import AnalyzerError, BackendUnavailable, CaptureFormatError, TLSParseError

__version__ = "0.1.0"


def analyze(*args, **kwargs):
    """See ``analyzer.api.analyze``."""
    from .api import analyze as _analyze

    return _analyze(*args, **kwargs)


analyze.__doc__ = "Analyse captures; see analyzer.api.analyze for arguments and the Report it returns."


def __getattr__(name: str):
    # ``Report`` on first use: ``import analyzer`` stays as light as the errors module.
    if name == "Report":
        from .report.result import Report

        return Report
    if name == "Evidence":
        from .evidence import Evidence

        return Evidence
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["analyze", "Report", "Evidence", "AnalyzerError", "BackendUnavailable", "CaptureFormatError", "TLSParseError", "__version__"]
