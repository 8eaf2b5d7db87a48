"""
A fully Bayesian fit without MCMC
=================================

``MultilevelBinomial(method="bayes")`` integrates the posterior of (b, tau) by
deterministic quadrature, so the uncertainty in tau is carried into every batch
and into a new batch, in a fraction of a second. Here it is compared with the
maximum-likelihood fit on the rats data.
"""

import matplotlib.pyplot as plt
import numpy as np

from skre import MultilevelBinomial
from skre.datasets import load_rats
from skre.priors import HalfCauchy

X, y = load_rats(return_X_y=True)
ml = MultilevelBinomial(group="batch").fit(X, y)
bayes = MultilevelBinomial(
    group="batch", method="bayes", tau_prior=HalfCauchy(1.0)
).fit(X, y)
print(bayes.posterior_summary().round(4))
print(f"ML: b = {ml.intercept_:.4f}, tau = {ml.tau_:.4f}")

# %%
# The marginal posterior density of tau (b integrated out by the same
# quadrature, :meth:`~skre.MultilevelBinomial.posterior_density`), against the
# maximum-likelihood estimate and its profile interval. The axis shows where
# the posterior has its mass (density above 1/1000 of its peak).
density = bayes.posterior_density("tau")
density = density[density["density"] > 1e-3 * density["density"].max()]
fig, ax = plt.subplots(figsize=(6.4, 3.6), layout="constrained")
ax.plot(density["value"], density["density"], label="posterior density of tau")
ax.fill_between(density["value"], density["density"], alpha=0.2)
ax.axvline(ml.tau_, color="k", label=f"ML estimate {ml.tau_:.3f}")
lo, hi = ml.confint(method="profile").loc["tau"]
ax.axvspan(lo, hi, color="grey", alpha=0.15, label="ML profile 95% interval")
ax.set_xlabel("tau")
ax.set_ylabel("posterior density")
ax.set_xlim(density["value"].min(), density["value"].max())
ax.set_ylim(bottom=0)
_ = ax.legend(fontsize="small")

# %%
# Shrinkage: posterior means against ML conditional modes, and the new-batch
# predictive interval, which widens when tau's uncertainty is included.
g_ml, g_b = ml.group_estimates(), bayes.group_estimates()
fig, ax = plt.subplots(figsize=(5, 5), layout="constrained")
ax.errorbar(
    g_ml["estimate"],
    g_b["estimate"],
    yerr=[g_b["estimate"] - g_b["lower"], g_b["upper"] - g_b["estimate"]],
    fmt="o",
    ms=3,
    alpha=0.6,
)
ax.plot([0, 0.35], [0, 0.35], "k--", lw=1)
ax.set_xlabel("ML (conditional mode)")
ax.set_ylabel("Bayes (posterior mean, 95% interval)")
print("new batch, ML:    ", np.round(ml.prediction_interval(), 3))
print("new batch, Bayes: ", np.round(bayes.prediction_interval(), 3))
plt.show()
