"""``gpucnn.utils.data``: torch.utils.data's names, for scripts written ``import gpucnn as torch``."""

from . import data

__all__ = ["data"]
