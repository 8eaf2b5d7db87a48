"""Bundled data and simulators."""

from ._base import load_rats, make_grouped_binomial

__all__ = ["load_rats", "make_grouped_binomial"]
