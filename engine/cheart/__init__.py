"""CHeart, the conditional 4D heart model: data, training, inference, trajectories, evaluation.

The network lives in ``engine/cheart/network.py``; this package holds everything around it.
"""
