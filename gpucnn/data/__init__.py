"""Datasets."""

from .synthetic import SHAPE_CLASSES, make_shapes

__all__ = ["SHAPE_CLASSES", "make_shapes"]
