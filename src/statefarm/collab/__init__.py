"""Collaborative filtering on MovieLens, the lesson's second system.

``ratings``: the files checked as read, the random and per-user time splits, ids mapped to
embedding rows. ``models``: the models (biases, dot product, with biases, a neural net),
their training and predictions. ``ranking``: top-k lists and their precision, recall, NDCG and
coverage. ``reports``: the lesson's pictures of a trained model.
The ``collab`` pipeline (``statefarm.pipelines.collab``) wires them.
"""
