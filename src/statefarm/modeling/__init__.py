"""What makes a model.

timm models and pretrained weights (``models``, ``weight_maps``), augmentation and its scan
(``augment``, ``augment_tuning``), optimizers and schedulers (``optim``), the epoch loop
(``engine``), one fold's training from a recipe (``training``), loaders and the mixed batch
sampler (``loaders``, ``sampler``), stored models (``checkpoints``).
"""
