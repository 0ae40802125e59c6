"""Many captures, one truth: flow rows of several captures joined into one row per TCP connection.

``join_rows`` is the single entry point the analysis calls where the rows of its captures are combined;
``connections`` joins by endpoints, time and ISN, ``dnat`` joins the two sides of a Service's DNAT,
``merge`` decides what a joined row says and ``vantage`` names where each capture was taken.
Standard library only.
"""

from __future__ import annotations

from typing import Sequence

from .connections import DEFAULT_CLOCK_SKEW_S, JoinResult, join_captures

__all__ = ["DEFAULT_CLOCK_SKEW_S", "JoinResult", "join_rows"]


def join_rows(parts: Sequence[Sequence[dict]], names: Sequence[str], clock_skew: float = DEFAULT_CLOCK_SKEW_S,
              services=None) -> JoinResult:
    """Rows per capture -> one row per connection (see :mod:`analyzer.join.connections`); with a
    ``services`` index (``analyzer.kube.services.ServiceIndex``), flows to a ClusterIP are also named and
    joined with their post-DNAT side (:mod:`analyzer.join.dnat`)."""
    if len(parts) > 1:
        result = join_captures(parts, names, clock_skew)
    else:
        rows = list(parts[0]) if parts else []
        result = JoinResult(rows, len(rows))
    if services is not None and services.has_cluster_ips:
        from .dnat import join_dnat

        result.rows, result.dnat_joined = join_dnat(result.rows, services, clock_skew)
    return result


def combine(parts: Sequence[Sequence[dict]], names: Sequence[str], stats: dict,
            clock_skew: float = DEFAULT_CLOCK_SKEW_S, services=None) -> list[dict]:
    """Where an analysis combines the rows of its captures: one call, whatever the engine.

    One capture and no Services pays nothing (its rows are returned as they are).  Otherwise the rows
    are joined and ``stats`` records ``clock_skew_s``, ``rows_in``, ``rows_joined``; notes go to its
    ``warnings`` (printed once on stderr).
    """
    stats["clock_skew_s"] = clock_skew
    stats["captures"] = len(parts)
    if len(parts) <= 1 and (services is None or not services.has_cluster_ips):
        return parts[0] if parts else []  # as it is: a list, or a RowStore of very many rows
    result = join_rows(parts, names, clock_skew, services)
    stats["rows_in"], stats["rows_joined"], stats["dnat_joined"] = result.rows_in, result.joined, result.dnat_joined
    stats["warnings"] += result.notes
    return result.rows
