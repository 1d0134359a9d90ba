"""Scale-out: scan jobs on threads or Dask tasks, and dask arrays over remote images.

Dask is an optional extra (``pip install 'cloudfits[dask]'``), imported when first used.
"""
