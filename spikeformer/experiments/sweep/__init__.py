"""Width sweeps: many runs into one directory, one CSV row per finished run, one plot (``spikeformer sweep``).

Two modes, each a thin module over the shared machinery of ``rows`` (CSV schema, rows keyed by point
and kept by config fingerprint, atomic rewrites, run-directory guard):

* ``hd`` (``--over hd``): one model per HD input code width D at k active bits;
* ``model`` (``--over model``): sparse-wide models (k-WTA, fan-in F) against dense-narrow baselines.

Both report ``parameters`` = ``parameter_count``: the trainable entries the model can use.
"""
