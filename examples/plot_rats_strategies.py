"""
The three strategies on the rats data
=====================================

Complete pooling, no pooling and partial pooling fit to the 71 batches of the rats
tumour data, compared batch by batch and on held-out batches.
"""

from sklearn.model_selection import GroupKFold, cross_val_score

from skre import CompletePoolingBinomial, MultilevelBinomial, NoPoolingBinomial
from skre.datasets import load_rats

X, y = load_rats(return_X_y=True)
models = {
    "complete": CompletePoolingBinomial(group="batch"),
    "no": NoPoolingBinomial(group="batch"),
    "partial": MultilevelBinomial(group="batch"),
}
for name, model in models.items():
    model.fit(X, y)
    table = model.group_estimates()
    print(
        f"{name:>8} pooling: batch 1 (0/20) {table.loc[1, 'estimate']:.3f} "
        f"[{table.loc[1, 'lower']:.3f}, {table.loc[1, 'upper']:.3f}], "
        f"logLik {model.loglik_:.2f}"
    )

# %%
# Held-out batches: mean log predictive probability per rat (higher is better).
for name, model in models.items():
    scores = cross_val_score(model, X, y, cv=GroupKFold(n_splits=5), groups=X["batch"])
    print(f"{name:>8} pooling: {scores.mean():.4f}")
