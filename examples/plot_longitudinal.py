"""
Repeated binary outcomes: patients over visits
==============================================

Not every grouped data set is a table of counts. Here each row is one visit
of one patient in a (simulated) two-arm trial, with a 0/1 outcome (an
infection present at that visit) and covariates that change from row to row:
the month of the visit, the treatment arm and their interaction. Patients
differ a lot in their risk, so the visits of one patient are not independent:
the patient is the group.

The example fits the multilevel model to these binary rows, compares its
effects with a logistic regression that ignores the patients, draws the
typical patient against the average over patients, and cross-validates the
three strategies over held-out patients.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.model_selection import GroupKFold, cross_val_score

from skre import CompletePoolingBinomial, MultilevelBinomial, NoPoolingBinomial

# %%
# The data: 150 patients, up to 7 visits each
# -------------------------------------------
# The truth: the log-odds of an infection fall by 0.25 a month, by 0.15 a
# month more under treatment, and each patient has their own baseline,
# normal with SD ``tau = 2`` around ``b = -0.5``. Some patients leave the
# trial early (8% before each visit after the first), so patients have
# between 1 and 7 rows.
rng = np.random.default_rng(23)
truth = {"intercept": -0.5, "month": -0.25, "treated": 0.0, "month:treated": -0.15}
tau = 2.0
months = np.array([0, 1, 2, 3, 6, 9, 12])
n_patients = 150

rows = []
for patient in range(n_patients):
    treated = patient % 2  # alternate allocation
    effect = tau * rng.standard_normal()
    for k, month in enumerate(months):
        if k > 0 and rng.random() < 0.08:
            break  # drops out
        logit = (
            truth["intercept"]
            + truth["month"] * month
            + truth["treated"] * treated
            + truth["month:treated"] * month * treated
            + effect
        )
        rows.append((patient, month, treated, rng.binomial(1, expit(logit))))
visits = pd.DataFrame(rows, columns=["patient", "month", "treated", "infected"])
visits["month:treated"] = visits["month"] * visits["treated"]

X = visits[["patient", "month", "treated", "month:treated"]]
y = visits["infected"]  # binary rows: one trial per visit
print(X.head())
print(
    f"{len(X)} visits of {X['patient'].nunique()} patients "
    f"({X.groupby('patient').size().min()} to {X.groupby('patient').size().max()} "
    f"each); {y.mean():.1%} infected"
)

# %%
# The multilevel model on binary rows
# -----------------------------------
# ``group="patient"`` names the group column; every other column is a
# covariate. Binary rows need no preparation: rows with the same patient and
# covariates are merged into counts inside the fit, which gives the same
# estimates as the rows themselves.
ml = MultilevelBinomial(group="patient").fit(X, y)
print(ml.summary().fixed_effects.round(3))
print(f"tau = {ml.tau_:.2f} (truth {tau})")

# %%
# Conditional and population-averaged effects
# --------------------------------------------
# Complete pooling with covariates is an ordinary logistic regression that
# treats all 150 x 7 visits as independent. Its slopes are not estimates of
# the multilevel model's: they describe the *average over patients* (the
# population-averaged effect), and on the logit scale an average over a wide
# spread of baselines is flatter, so they are smaller in size. The multilevel
# slopes describe *one patient* (the conditional effect), the quantity the
# simulation set.
cp = CompletePoolingBinomial(group="patient").fit(X, y)
effects = pd.DataFrame(
    {
        "truth": truth.values(),
        "multilevel": [ml.intercept_, *ml.coef_],
        "complete pooling": [cp.intercept_, *cp.coef_],
    },
    index=truth.keys(),
)
print(effects.round(3))

# %%
# The typical patient and the average patient
# -------------------------------------------
# Two curves answer two questions. The typical (median) patient, with group
# effect 0, has probability ``expit(b + x' coef)``. The share of *all*
# patients infected at a visit is the average of that probability over the
# population of patients, which is what the multilevel model predicts for a
# patient it has not seen; complete pooling estimates it directly. The
# points are the observed shares at each visit (area: patients seen).
grid = np.linspace(0, 12, 49)
styles = {
    "multilevel: typical patient": "C1--",
    "multilevel: average over patients": "C1-",
    "complete pooling": "C2:",
}
fig, axes = plt.subplots(1, 2, figsize=(9.6, 4.2), sharey=True, layout="constrained")
for treated, ax in zip((0, 1), axes):
    # patient -1 was not seen in fit: a new patient of this arm
    new = pd.DataFrame(
        {"patient": -1, "month": grid, "treated": treated, "month:treated": grid}
    )
    new["month:treated"] *= treated
    z = new.drop(columns="patient").to_numpy()
    curves = [
        expit(ml.intercept_ + z @ ml.coef_),
        ml.predict_proba(new)[:, 1],
        cp.predict_proba(new)[:, 1],
    ]
    for (label, style), p in zip(styles.items(), curves):
        ax.plot(grid, p, style, label=label)
    seen = visits[visits["treated"] == treated].groupby("month")["infected"]
    ax.scatter(
        seen.mean().index,
        seen.mean(),
        s=2 * seen.size(),
        c="k",
        alpha=0.6,
        label="observed share",
    )
    ax.set(title="treated" if treated else "control", xlabel="month of the visit")
axes[0].set_ylabel("probability of an infection")
axes[0].legend(loc="upper right", fontsize="small")
plt.show()

# %%
# The average over patients lies above the typical patient at every visit and
# falls more slowly in proportion (control: from 0.41 to 0.07 in a year, the
# typical patient from 0.33 to 0.02): patients with a high baseline stay
# infected for longer and make up more and more of the infections. That is
# why the logistic regression's slopes are flatter than the multilevel
# model's; its curve follows the multilevel model's average over patients, not
# its typical patient. Use the conditional effects to talk about one patient
# and the average to talk about the share of all patients.
#
# Held-out patients
# -----------------
# ``GroupKFold`` keeps every patient's visits together, so each fold scores
# patients that the fit has not seen: the question of the next trial. No
# pooling has nothing to say about a new patient and falls back on complete
# pooling; it also cannot estimate the treatment effect, which is constant
# within each patient (a group-level covariate), and drops it with a
# warning.
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    NoPoolingBinomial(group="patient").fit(X, y)
print(type(caught[0].message).__name__ + ":", str(caught[0].message)[:90], "...")

cv = GroupKFold(n_splits=5)
for model in (
    CompletePoolingBinomial(group="patient"),
    NoPoolingBinomial(group="patient"),
    MultilevelBinomial(group="patient"),
):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no pooling drops `treated`, as above
        scores = cross_val_score(model, X, y, cv=cv, groups=X["patient"])
    print(f"{type(model).__name__:24} {scores.mean():.4f}")

# %%
# The score is the mean log predictive probability per visit of the
# held-out patients, each patient's visits scored jointly (higher is
# better). The multilevel model wins by a wide margin: after a patient's
# first visits it knows whether this is a high-risk patient, and the visits of
# one patient are far from independent.
