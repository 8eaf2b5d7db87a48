"""
The three strategies on the rats data
=====================================

Start here. In each of 71 batches of laboratory rats, *m* of *n* rats developed
a tumour. What is each batch's tumour probability? The three strategies of the
lecture answer differently:

- **complete pooling** (:class:`~skre.CompletePoolingBinomial`): one probability
  for every batch, the overall proportion;
- **no pooling** (:class:`~skre.NoPoolingBinomial`, the lecture's M3): each
  batch's own proportion, from its own rats only;
- **partial pooling** (:class:`~skre.MultilevelBinomial`, the lecture's M4): each
  batch's proportion pulled toward the population of batches, by an amount the
  data choose.

We fit all three, look at their estimates batch by batch, and compare how well
they predict batches they have not seen.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import GroupKFold, cross_val_score

from skre import CompletePoolingBinomial, MultilevelBinomial, NoPoolingBinomial
from skre.datasets import load_rats

X, y = load_rats(return_X_y=True)  # X: "batch"; y: m (tumours), n (rats)
models = {
    "complete pooling": CompletePoolingBinomial(group="batch"),
    "no pooling (M3)": NoPoolingBinomial(group="batch"),
    "partial pooling (M4)": MultilevelBinomial(group="batch"),
}
tables = {}
for name, model in models.items():
    model.fit(X, y)
    tables[name] = model.group_estimates()
    row = tables[name].loc[1]  # batch 1: 0 tumours in 20 rats
    print(
        f"{name:21} batch 1 (0/20): {row['estimate']:.3f} "
        f"[{row['lower']:.3f}, {row['upper']:.3f}]   logLik {model.loglik_:.2f}"
    )

# %%
# Every batch under the three strategies
# --------------------------------------
# Each batch's estimate against its observed proportion. No pooling keeps the
# observed proportion (the diagonal), complete pooling gives every batch the
# same 0.154 (the horizontal line), and partial pooling lies between the two:
# each batch is pulled toward the population, small batches (small markers) the
# most. The 14 batches with no tumour get 0.07 instead of 0.
observed = tables["no pooling (M3)"]["observed"]
trials = tables["no pooling (M3)"]["trials"]
fig, ax = plt.subplots(figsize=(6.4, 5.2), layout="constrained")
ax.plot([0, 0.4], [0, 0.4], color="C0", lw=1.5, label="no pooling: own proportion")
ax.axhline(
    tables["complete pooling"]["estimate"].iloc[0],
    color="C2",
    lw=1.5,
    ls="--",
    label="complete pooling: one proportion",
)
ax.scatter(
    observed,
    tables["partial pooling (M4)"]["estimate"],
    s=3 * trials,
    color="C1",
    alpha=0.7,
    edgecolor="k",
    lw=0.5,
    label="partial pooling (area: rats in the batch)",
)
ax.set_xlabel("observed proportion m / n")
ax.set_ylabel("estimated tumour probability")
ax.set_xlim(-0.01, 0.4)
ax.set_ylim(-0.01, 0.4)
ax.set_aspect("equal")
ax.legend(loc="upper left")
ax.set_title("71 batches, three strategies")

# %%
# Predicting batches not seen in the fit
# --------------------------------------
# Five-fold cross-validation over batches (``GroupKFold``): each model is fit to
# four fifths of the batches and scored on the rats of the others. ``score`` is
# the mean log predictive probability per rat (higher is better). No pooling
# knows nothing about a new batch and falls back to the pooled estimate, so it
# scores exactly as complete pooling does; partial pooling knows how much
# batches vary and predicts them better.
cv = GroupKFold(n_splits=5)
scores = {
    name: cross_val_score(model, X, y, cv=cv, groups=X["batch"])
    for name, model in models.items()
}
for name, s in scores.items():
    print(f"{name:21} held-out score {s.mean():.4f}")

fig, ax = plt.subplots(figsize=(6.4, 2.8), layout="constrained")
names = list(scores)
for i, name in enumerate(names):
    ax.plot(scores[name], np.full(5, i), "o", color="0.6", ms=4)
    ax.plot(scores[name].mean(), i, "D", color=f"C{i}", ms=9)
ax.set_yticks(range(len(names)), names)
ax.invert_yaxis()
ax.set_xlabel("held-out log score per rat (grey: folds; diamond: mean)")

# %%
# Partial pooling gives every batch a finite, sensible estimate, borrows
# strength across batches as much as their real differences warrant, and
# predicts new batches best. :ref:`sphx_glr_auto_examples_plot_rats.py` looks
# closer at how it shrinks and at the population it estimates.
plt.show()
