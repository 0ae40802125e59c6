"""Click commands that live outside ``cli.py`` (each registered there with one ``cli.add_command`` line).

``capture`` (live capture + classification), ``show`` (one flow's drill-down), ``compare`` (native vs
tshark engine).  Each stays a thin layer over a library module: ``analyzer.live``,
``analyzer.engines.drilldown``, ``analyzer.engines.compare``.
"""
