"""The arguments of the simulations that read a fit: a random state, a number
of draws, and training rows of whole trials to draw from.

Model checking (:mod:`skre._checking`), the tests of tau
(:mod:`skre._comparison`) and the decision tools (:mod:`skre._decisions`)
check them alike.
"""

import numpy as np

from ._inputs import _show


def check_random_state_seed(random_state):
    """A SeedSequence from None, a non-negative int, a SeedSequence or a Generator."""
    if isinstance(random_state, np.random.SeedSequence):
        return random_state
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(random_state.integers(2**63))
    if isinstance(random_state, np.random.RandomState):
        return np.random.SeedSequence(random_state.randint(2**31))
    expected = "None, a non-negative int or a numpy Generator"
    if random_state is None:
        return np.random.SeedSequence()
    if isinstance(random_state, (bool, np.bool_)) or not isinstance(
        random_state, (int, np.integer)
    ):
        raise TypeError(f"random_state must be {expected}; got {_show(random_state)}.")
    if random_state < 0:
        raise ValueError(f"random_state must be {expected}; got {_show(random_state)}.")
    return np.random.SeedSequence(int(random_state))


def check_count(name, value, low=1):
    """``value`` as an int of at least ``low``: a number of simulations."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int; got {_show(value)}.")
    if value < low:
        raise ValueError(f"{name} must be at least {low}; got {_show(value)}.")
    return int(value)


def whole_trials(design, what, successes=False):
    """The training rows' trials as int64, for the simulations of ``what``.

    A ValueError when they are not whole numbers (fractional sample_weight):
    a binomial draw of 28.5 trials does not exist, and rounding or truncating
    would simulate other data than the fit's. With ``successes`` the
    successes must be whole too.
    """
    data = design.data
    counts = [("trials", data.trials)] + [("successes", data.successes)] * successes
    for name, values in counts:
        bad = values != np.round(values)
        if bad.any():
            raise ValueError(
                f"{what} simulates whole numbers of successes out of whole numbers "
                f"of trials; this fit has fractional {name} ({int(bad.sum())} of "
                f"{len(values)} rows, e.g. {float(values[bad][0]):g}), from "
                "fractional sample_weight. Refit with whole-number weights (or "
                "counts) to use it."
            )
    return np.round(data.trials).astype(np.int64)
