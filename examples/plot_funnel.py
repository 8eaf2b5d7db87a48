"""
Which batches are unusual? Historical controls, funnel plots, flags and ranks
=============================================================================

The rats tumour data again: in each of 71 batches of laboratory rats, *m* of
*n* rats developed a tumour. Batch 71 (4 tumours in 14 rats) is the current
experiment's control group; batches 1-70 are historical controls from earlier
experiments. Four questions, each with its own tool:

- is the current batch unusual **against the history**?
  (:meth:`~skre.MultilevelBinomial.historical_control_test`)
- which batches lie outside what the population of batches produces?
  (a funnel plot, :class:`~skre.plotting.FunnelDisplay`)
- which batches probably have a tumour rate above a threshold, with the false
  discovery rate controlled? (:meth:`~skre.MultilevelBinomial.flag_groups`)
- how sure are we of each batch's rank? (:class:`~skre.plotting.RankDisplay`)
"""

import matplotlib.pyplot as plt

from skre import MultilevelBinomial
from skre.datasets import load_rats
from skre.plotting import FunnelDisplay, RankDisplay

X, y = load_rats(return_X_y=True)  # X: "batch"; y: m (tumours), n (rats)

# %%
# The current batch against its historical controls
# -------------------------------------------------
# Fit the multilevel model to the history alone. A new batch of this history
# draws its tumour probability from the fitted population, so its count out of
# 14 rats is logit-normal-binomial; the p-value is the predictive probability
# of 4 or more tumours. The plug-in p-value takes the fitted ``b`` and ``tau``
# as known; by default the test averages over their uncertainty instead (a
# posterior with flat priors on ``b`` and a ``HalfNormal(1)`` prior on
# ``tau``), which is what a test with 70 historical batches should do.
history = (X["batch"] <= 70).to_numpy()
past = MultilevelBinomial(group="batch").fit(X[history], y[history])
print(f"history: b = {past.intercept_:.3f}, tau = {past.tau_:.3f}")
lo, hi = past.predictive_counts(14).interval(0.95)
print(f"a new batch of 14 rats: {lo} to {hi} tumours with probability 95%")
for uncertainty in (False, True):
    test = past.historical_control_test(
        X[~history], y[~history], include_parameter_uncertainty=uncertainty
    )
    print(f"P(M >= 4) = {test.pvalue:.4f}  ({test.method})")

# %%
# 4 of 14 (29%) is high next to the mean tumour rate, but not unusual for a
# batch of this history: batches differ, and a new batch may well be one of
# the higher ones. Averaging over the uncertainty of ``b`` and ``tau`` widens
# the predictive distribution a little and raises the p-value.
#
# A funnel plot of all 71 batches
# -------------------------------
# Each batch's observed proportion against its number of rats. The limits are
# those of a *new* batch of the fitted population, at each number of rats:
# they are overdispersed (they include the spread ``tau`` between batches, not
# only the binomial noise around the mean), and they are steps because counts
# are whole numbers. No batch lies outside the 99.8% limits, or even the 95%
# ones: the variation between batches is what the population describes.
m4 = MultilevelBinomial(group="batch").fit(X, y)
funnel = FunnelDisplay.from_estimator(m4, levels=(0.95, 0.998))
print(f"outside the 99.8% limits: {list(funnel.flagged_)}")

# %%
# Flagging batches above a threshold
# ----------------------------------
# A different question: which batches probably have a tumour probability above
# 0.2? ``flag_groups`` computes each batch's posterior error probability (PEP),
# ``P(theta <= 0.2 | data)``, and flags the batches with the smallest PEPs for
# as long as their mean, the q-value, stays at most ``fdr``. With
# ``fdr=0.1`` the expected share of batches flagged wrongly (whose true
# probability is below 0.2) is at most 10%, given the data and the model.
flags = m4.flag_groups(0.2, fdr=0.1)
print(flags.attrs["error_rate"])
print(flags[flags["flagged"]].round(3).to_string())
print(f"{flags.attrs['n_flagged']} of {len(flags)} batches flagged")

# %%
# The funnel plot again, with those batches highlighted: they are inside the
# limits (nothing unusual for a batch of the population), yet probably above
# 0.2; the funnel asks "unusual?", the flags ask "above the threshold?".
flagged = FunnelDisplay.from_estimator(m4, threshold=0.2, fdr=0.1)

# %%
# Ranks
# -----
# Ranking the batches by tumour probability is tempting, and fragile: a
# batch's rank depends on every other batch's uncertain probability, and 71
# batches whose intervals overlap (a batch of 20 rats has a 95% interval 0.14
# to 0.28 wide) can be ordered in very many ways. The dark bars are each
# batch's 95% rank interval; the lighter, longer ones are simultaneous
# intervals, which hold all 71 ranks at once with probability 95%, the ones to
# read when comparing many batches. Even the batch with the best expected rank
# could be anywhere from 1st to 23rd.
ranks = RankDisplay.from_estimator(m4, n_draws=4000, random_state=0)
table = ranks.ranks_
top = table.iloc[0]
print(
    f"best expected rank: batch {table.index[0]}, {top.expected_rank:.1f} "
    f"(95% interval {top.rank_lower:.0f} to {top.rank_upper:.0f}, "
    f"simultaneous {top.simultaneous_lower:.0f} to {top.simultaneous_upper:.0f})"
)
marginal = table["rank_upper"] - table["rank_lower"] + 1
joint = table["simultaneous_upper"] - table["simultaneous_lower"] + 1
print(
    f"ranks per 95% interval: median {marginal.median():.0f}; "
    f"per simultaneous interval: at least {joint.min()}"
)

plt.show()
