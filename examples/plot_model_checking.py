"""
Comparing and checking the three strategies
===========================================

Do the rats' batches differ? The likelihood-ratio test of tau = 0, with the
boundary's null distribution, says yes. Do the fitted models describe the
data? Randomised quantile residuals are N(0, 1) under the model at its true
parameters, and approximately so at the fitted ones, so a normal QQ plot checks
each fit: complete pooling, which ignores the batches, shows the
over-dispersion that partial pooling absorbs.
"""

import matplotlib.pyplot as plt

from skre import CompletePoolingBinomial, MultilevelBinomial, lr_test
from skre.datasets import load_rats
from skre.plotting import ResidualDisplay

X, y = load_rats(return_X_y=True)
cp = CompletePoolingBinomial(group="batch").fit(X, y)
m4 = MultilevelBinomial(group="batch").fit(X, y)
print(lr_test(cp, m4))

# %%
# The exact conditional test needs no large-sample argument: given the total
# number of tumours, the batches' counts are multivariate hypergeometric if
# every batch has the same probability.
print(m4.test_tau("exact", n_sims=9999, random_state=0))

# %%
# Quantile residuals, complete pooling on top, partial pooling below. Complete
# pooling has too many large residuals in both tails: the batches vary more
# than one probability allows. Partial pooling's residuals integrate each
# batch's effect over the population N(0, tau^2), and they lie close to the line.
fig, axes = plt.subplots(2, 2, figsize=(9.6, 7.6))
ResidualDisplay.from_estimator(cp, X, y, random_state=0, ax=axes[0])
axes[0, 0].set_title("Complete pooling: normal QQ")
ResidualDisplay.from_estimator(m4, X, y, random_state=0, ax=axes[1])
axes[1, 0].set_title("Partial pooling: normal QQ")
fig.tight_layout()
plt.show()
