"""CHeart, the conditional 4D heart model: data, training, inference, trajectories, evaluation.

The network lives in ``engine/models/cheart.py``; this package holds everything around it.
"""
