"""Models: baselines, clusters, transfer, the interest MLP, recurrent models, item lists, training.

Imports :mod:`interest_lib.data` and :mod:`interest_lib.evaluation`."""
