"""Group labels: missing ones refused by row, codes and sorted unique labels."""

import numpy as np
import pandas as pd

from ._inputs import _rows


def check_labels(labels):
    """Reject missing and non-finite group labels, naming the rows."""
    missing = pd.isna(labels)
    if labels.dtype.kind == "f":
        missing = missing | ~np.isfinite(labels)
    if missing.any():
        raise ValueError(
            f"the group column has a missing (NaN/None) or infinite label in "
            f"{_rows(missing)}; every row needs a group label."
        )


def factorize(labels):
    """Integer codes and sorted unique labels (appearance order if unsortable)."""
    check_labels(labels)
    try:
        try:
            codes, uniques = pd.factorize(labels, sort=True)
        except TypeError as exc:
            if "unhashable" in str(exc):
                raise
            codes, uniques = pd.factorize(labels, sort=False)
    except TypeError as exc:
        raise TypeError(
            f"group labels must be hashable, e.g. strings or numbers: {exc}"
        ) from exc
    return codes, np.asarray(uniques, dtype=object if labels.dtype == object else None)
