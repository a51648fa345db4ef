"""The width ladder (``spikeformer ladder``): one MLP task, rungs that each change one constraint between the
anchors' float TopK model and the project's spiking one, dense baselines beside every rung, one resumable CSV.

* ``data``: MNIST-1D signals generated offline (as many training signals as asked), validation carved from them;
* ``mlp``: the rung model, readable top to bottom; ``exact``: the exact rungs (the project's spiking model in Loihi
  fixed point, simulator and Lava); ``rungs``: the registry of rungs and their variants;
* ``counts``: what a trained point measures (synaptic ops, parameters, dead units, …); ``train``: early stopping;
* ``harness``: learning rate per width, dense baselines, the CSV rows; ``slopes``, ``figure``: the answer.
"""
