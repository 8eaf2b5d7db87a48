"""Toenail's (1 + time | patient) by exact quadrature, with profile intervals.

    python benchmarks/toenail_slopes.py    (about 16 minutes on two cores)

The numbers of "Beyond the random intercept" in the user guide: HSAUR3's
toenail data (tests/reference/data/toenail.csv), ``y ~ treat * time + (1 +
time | patient)``, fitted by the default ``n_quad="auto"`` (which ends on
the trapezoid rule in sinh(v) of step 0.05, settled against step 0.035),
then the 95% profile intervals (on that rule: most of the time) and the
Wald intervals. lme4's Laplace fit of the same model (intercept SD 23.4,
correlation -0.87) is in tests/reference/slopes_lme4.json.
"""

import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from skre import MultilevelBinomial

DATA = Path(__file__).parent.parent / "tests" / "reference" / "data" / "toenail.csv"


def main():
    d = pd.read_csv(DATA)
    X = d[["patient", "treat", "time"]].assign(tt=d["treat"] * d["time"])
    y = d["y"].to_numpy()
    est = MultilevelBinomial(group="patient", random_slopes=["time"], verbose=1)
    t = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X, y)
    print(f"fit: {time.perf_counter() - t:.0f} s; warnings:")
    for w in caught:
        print(f"  {w.category.__name__}: {w.message}")
    print(est.variance_components_.to_string())
    print(f"loglik_ {est.loglik_:.4f}; rule {est._fit_result.n_quad}")
    names = ["(Intercept)", "treat", "time", "treat:time"]
    print(pd.Series(np.r_[est.intercept_, est.coef_], index=names).to_string())
    t = time.perf_counter()
    profile = est.confint(method="profile")
    print(f"\n95% profile intervals ({time.perf_counter() - t:.0f} s; the")
    print("correlation's row is Wald):")
    print(profile.to_string())
    print("\n95% Wald intervals:")
    print(est.confint().to_string())


if __name__ == "__main__":
    main()
