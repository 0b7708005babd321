"""Recipes: the course's models, their datasets and the training loop.

Importing this package (and `datasets`, `recipe`) does not import TensorFlow; building or
training a model does."""
