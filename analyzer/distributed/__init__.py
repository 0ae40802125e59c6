"""Past one machine: the analysis on a Dask cluster (the optional extra ``mtls-analyzer[dask]``).

``engine`` plans and runs the tasks (``analyze(..., dask=...)``), ``adapter`` is the one place that calls
the one-machine reading and stitching, ``tasks`` the functions the workers run, ``inputs`` paths, globs,
directories and fsspec URLs, ``views`` what ``analyze --dask`` prints or writes.  Nothing outside this
package imports dask, distributed or fsspec, and nothing imports this package unless ``dask`` is asked for.
"""
