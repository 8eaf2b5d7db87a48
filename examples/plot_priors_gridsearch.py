"""
Tuning priors with GridSearchCV
===============================

Priors from :mod:`skre.priors` are ordinary estimator parameters, so a grid
search can tune them. Here we tune how strongly :class:`~skre.NoPoolingBinomial`
shrinks each rats batch toward a common value (a normal prior on every batch's
log-odds), scored on held-out batches, and compare the result with the
multilevel model, which estimates the amount of shrinkage itself. Then a prior on
``tau`` for a small data set whose maximum-likelihood ``tau`` is 0.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_val_score

from skre import CompletePoolingBinomial, MultilevelBinomial, NoPoolingBinomial
from skre.datasets import load_rats, make_grouped_binomial
from skre.priors import Gamma, HalfCauchy, HalfNormal, Normal

X, y = load_rats(return_X_y=True)
cv = GroupKFold(n_splits=5)

# %%
# A fixed prior on every batch's log-odds
# ---------------------------------------
# ``group_prior=Normal(mean, scale)`` shrinks each batch toward ``mean``; a small
# scale is close to complete pooling, a large one close to no pooling. The score
# is the mean log predictive probability per rat in held-out batches.
scales = np.array([0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 1.0, 1.5, 2.0, 3.0])
grid = GridSearchCV(
    NoPoolingBinomial(group="batch"),
    {"group_prior": [Normal(-1.9, float(s)) for s in scales]},
    cv=cv,
)
grid.fit(X, y, groups=X["batch"])
results = pd.DataFrame(grid.cv_results_)
print(results[["param_group_prior", "mean_test_score"]].round(4).to_string(index=False))
print("best:", grid.best_params_["group_prior"])

reference = {
    name: cross_val_score(est, X, y, cv=cv, groups=X["batch"]).mean()
    for name, est in [
        ("complete pooling", CompletePoolingBinomial(group="batch")),
        ("multilevel (tau estimated)", MultilevelBinomial(group="batch")),
    ]
}
m4 = MultilevelBinomial(group="batch").fit(X, y)

fig, ax = plt.subplots(figsize=(6.4, 4))
ax.plot(
    scales, results["mean_test_score"], "o-", label="no pooling + Normal(-1.9, scale)"
)
for (name, score), style in zip(reference.items(), [":", "--"]):
    ax.axhline(score, color="k", linestyle=style, label=name)
ax.axvline(m4.tau_, color="C1", alpha=0.5, label=f"multilevel tau = {m4.tau_:.3f}")
ax.set_xscale("log")
ax.set_xlabel("prior scale on each batch's log-odds")
ax.set_ylabel("held-out log score per rat")
ax.legend(fontsize="small")
fig.tight_layout()

# %%
# The best scale is close to the multilevel model's estimated ``tau``, and the
# best score matches the multilevel model's: a normal prior on the batches'
# log-odds *is* the multilevel population, except that the multilevel model
# estimates its centre and spread by maximum likelihood in a single fit.
#
# A prior on tau at the boundary
# ------------------------------
# Ten groups of 20 trials with a small true ``tau``: the maximum-likelihood
# ``tau`` is exactly 0 (a :class:`~skre.exceptions.BoundaryWarning`). A prior
# with zero density at 0, such as blme's ``Gamma(2.5, 0)``, keeps the posterior
# mode positive; priors with their mode at 0 do not.
Xs, ys, _ = make_grouped_binomial(10, trials=20, tau=0.2, random_state=3)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the boundary fits warn
    for prior in [None, Gamma(2.5, 0), HalfCauchy(1.0), HalfNormal(0.5)]:
        fit = MultilevelBinomial(group="group", tau_prior=prior).fit(Xs, ys)
        print(
            f"tau_prior={prior!r:26} tau = {fit.tau_:.3f}  boundary = {fit.boundary_}"
        )

plt.show()
