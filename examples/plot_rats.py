"""
Shrinkage, the population and a new batch: the rats lecture end to end
=======================================================================

The rats tumour data: in each of 71 batches of laboratory rats, *m* of *n* rats
developed a tumour. We fit the lecture's two main models (the lecture numbers
its models; M3 and M4 are the third and fourth),

- **M3, no pooling** (:class:`~skre.NoPoolingBinomial`): each batch's
  probability on its own (its observed proportion),
- **M4, partial pooling** (:class:`~skre.MultilevelBinomial`):
  ``logit θ_g = b + ξ_g`` with ``ξ_g ~ N(0, τ²)``,

then draw how M4 shrinks each batch toward the population, the distribution of θ
for a new batch with its prediction interval, and every batch's estimate with its
interval.
"""

import matplotlib.pyplot as plt

from skre import MultilevelBinomial, NoPoolingBinomial
from skre.datasets import load_rats
from skre.plotting import CaterpillarDisplay, PopulationDisplay, ShrinkageDisplay

X, y = load_rats(return_X_y=True)  # X: "batch"; y: m (tumours), n (rats)

m3 = NoPoolingBinomial(group="batch").fit(X, y)
m4 = MultilevelBinomial(group="batch").fit(X, y)
print(f"M4: b = {m4.intercept_:.4f}, tau = {m4.tau_:.4f}")
print(
    f"    median theta expit(b) = {m4.population_.median():.4f}, "
    f"mean theta E[theta] = {m4.population_.mean():.4f}"
)

# %%
# Shrinkage
# ---------
# Each arrow starts at a batch's own proportion (M3) and ends at its M4 estimate.
# Small batches (small markers) move the most; the 14 batches with 0 tumours get
# 0.07 instead of 0. Shrinkage happens on the logit scale, toward
# ``expit(b)``; the dashed line is the population mean ``E[θ]``.
shrinkage = ShrinkageDisplay.from_estimators(m3, m4, level=0.95)

# %%
# A new batch
# -----------
# θ of a batch not in the data follows the population distribution of M4, a
# logit-normal. The shaded area holds 95% of new batches; the rug shows the 71
# observed proportions.
lower, upper = m4.prediction_interval(level=0.95)
print(f"95% prediction interval for a new batch's theta: [{lower:.3f}, {upper:.3f}]")
lower, upper = m4.prediction_interval(level=0.95, include_parameter_uncertainty=True)
print(f"  with the uncertainty of b and tau: [{lower:.3f}, {upper:.3f}]")
population = PopulationDisplay.from_estimator(m4, level=0.95)

# %%
# Every batch
# -----------
# M4's estimate and 95% interval for each batch, sorted; crosses mark the
# observed proportions, pulled toward the population mean. (Batch labels at 8
# points, readable with 71 rows.)
caterpillar = CaterpillarDisplay.from_estimator(m4, level=0.95)
caterpillar.ax_.tick_params(axis="y", labelsize=8)
caterpillar.figure_.tight_layout()

# %%
# For comparison, M3's intervals: they start at 0 for 0 of *n* (0 to 0.09 for 0
# of 20, a profile-likelihood interval) and are much wider for the small
# batches.
caterpillar_m3 = CaterpillarDisplay.from_estimator(m3, level=0.95)
caterpillar_m3.ax_.tick_params(axis="y", labelsize=8)
caterpillar_m3.figure_.tight_layout()

plt.show()
