"""Brute-force posterior summary of the rats data under method="bayes"'s model
(flat prior on b, HalfCauchy(1) on tau, the 25-node adaptive quadrature
likelihood of skre._core.quadrature.MarginalLikelihood), for tests/test_bayes_grid.py.

A 541 x 2121 grid in (b, log tau) over [-3.3, -0.6] x [-9, 1.6] (the joint
density at its edges is below 3e-10 of its top), Simpson's rule in each
direction, quantiles by cubic Hermite interpolation of the CDF. No nested rule,
no whitening, no interpolation of log densities. About 3 minutes:

    PYTHONPATH=. python tests/reference/rats_bayes_grid.py
"""

import json
from pathlib import Path

import numpy as np
from scipy.integrate import cumulative_simpson, simpson
from scipy.interpolate import CubicHermiteSpline

from skre import MultilevelBinomial
from skre.datasets import load_rats
from skre.priors import HalfCauchy


def main():
    X, y = load_rats(return_X_y=True)
    fit = MultilevelBinomial(group="batch", tau_prior=HalfCauchy(1.0)).fit(X, y)
    model = fit._fit_result.model
    b = np.linspace(-3.3, -0.6, 541)
    theta = np.linspace(-9.0, 1.6, 2121)
    B, T = np.meshgrid(b, theta, indexing="ij")
    loglik = model.values(np.column_stack([B.ravel(), np.exp(T.ravel())]))
    log_joint = loglik.reshape(B.shape) + HalfCauchy(1.0).logpdf(np.exp(T)) + T
    joint = np.exp(log_joint - log_joint.max())
    edges = max(joint[[0, -1]].max(), joint[:, [0, -1]].max())
    out = {"edge_density": float(edges)}
    for name, x, marginal, f in (
        ("intercept", b, simpson(joint, x=theta, axis=1), lambda v: v),
        ("tau", theta, simpson(joint, x=b, axis=0), np.exp),
    ):
        dens = marginal / simpson(marginal, x=x)
        mean = simpson(f(x) * dens, x=x)
        sd = np.sqrt(simpson((f(x) - mean) ** 2 * dens, x=x))
        cdf = CubicHermiteSpline(x, np.r_[0, cumulative_simpson(dens, x=x)], dens)
        q = [float(f(cdf.solve(p, extrapolate=False)[0])) for p in (0.025, 0.975)]
        out[name] = {"mean": float(mean), "sd": float(sd), "2.5%": q[0], "97.5%": q[1]}
    path = Path(__file__).with_name("rats_bayes_grid.json")
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
