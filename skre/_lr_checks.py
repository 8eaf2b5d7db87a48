"""What :func:`skre.lr_test` checks before it compares two fits.

A likelihood-ratio test needs two maximum-likelihood fits of the same data,
the restricted model nested in the full one, and log-likelihoods computed
alike. "The same data" is the same rows: the same (weighted) successes and
trials row by row (a digest kept on each fit's design,
:func:`skre._design.rows_fingerprint`) and the same binomial constants. The
same trials given as counts and as binary rows are refused: their
log-likelihoods differ by the binomial coefficients, and only the same rows
let the designs be matched row by row. Nesting is read off the designs on
those rows: the restricted model's groups must contain the full model's
(no pooling) or equal them (partial pooling), and each of its covariates
must be a linear combination of the full model's covariates and intercept
(or group intercepts) on the rows. So complete pooling with a covariate
that is constant within groups is nested in no pooling, and a covariate
whose values changed between the fits is not nested at all.
"""

import numpy as np

from ._validation import _show

#: the pairs of kinds that can be nested (restricted, full)
NESTED_KINDS = {
    ("complete pooling", "complete pooling"),
    ("complete pooling", "no pooling"),
    ("complete pooling", "multilevel"),
    ("no pooling", "no pooling"),
    ("multilevel", "multilevel"),
}


def model_kind(est):
    """The kind of an skre estimator (its class's ``_model_kind``), read without
    importing the estimator classes, which call lr_test's checks."""
    kind = getattr(type(est), "_model_kind", None)
    if kind in {k for pair in NESTED_KINDS for k in pair}:
        return kind
    raise TypeError(
        f"lr_test compares fitted skre estimators; got {type(est).__name__}."
    )


def check_no_priors(est, what="lr_test", instead=None):
    """``what`` needs the likelihood's maximum: refuse a posterior mode (a fit
    with priors) or a posterior (``method="bayes"``), saying what to do
    ``instead`` (default: refit without priors)."""
    name = type(est).__name__
    if getattr(est, "method", "ml") == "bayes":
        raise ValueError(
            f"{what} needs a maximum-likelihood fit; this {name} has method="
            "'bayes' (posterior means, not a likelihood maximum). "
            + (instead or "Compare method='bayes' fits by their posteriors")
            + "; posterior_summary() and posterior_density('tau') describe tau."
        )
    for prior in ("tau_prior", "coef_prior", "group_prior", "covariance_prior"):
        if getattr(est, prior, None) is not None:
            raise ValueError(
                f"{what} needs a maximum-likelihood fit; this {name} has "
                f"{prior}={getattr(est, prior)!r} (its fit is a posterior mode). "
                + (instead or "Refit without priors to test")
                + "."
            )


def check_nested(restricted, full):
    """Refuse what lr_test cannot compare; return the two kinds of model and,
    for a one-level model against nested groups, the nested fit's SD that
    the one-level model holds at 0 (``"tau_outer_"`` when its groups are the
    (outer, inner) pairs, ``"tau_"`` when they are the outer groups; else
    None)."""
    for est in (restricted, full):
        check_no_priors(est)
    kinds = model_kind(restricted), model_kind(full)
    if kinds not in NESTED_KINDS:
        raise ValueError(
            f"{kinds[0]} ({type(restricted).__name__}) is not nested in {kinds[1]} "
            f"({type(full).__name__}); nested pairs are complete pooling in no "
            "or partial pooling, and a model in the same kind with more covariates."
        )
    r, f = restricted._fit_result, full._fit_result
    _check_same_rows(r, f, restricted, full)
    if kinds == ("multilevel", "multilevel"):
        _check_same_rule(restricted, full)
        random_effects_added(restricted, full)
    r_cell, f_cell, weight = _joint_cells(r.design, f.design)
    r_group = r.design.data.codes[r_cell]
    f_group = f.design.data.codes[f_cell]
    level = _check_groups(kinds, r_group, f_group, restricted, full)
    _check_covariates(kinds, r.design, f.design, r_cell, f_cell, weight, f_group)
    return kinds, level


def random_structure(est):
    """A multilevel fit's random slopes (a tuple of names) and whether their
    covariance is diagonal."""
    slopes = tuple(map(str, getattr(est, "random_slopes_", ())))
    return slopes, bool(slopes) and getattr(est, "covariance", "") == "diagonal"


def random_effects_added(restricted, full):
    """How many random effects the full multilevel model adds (0 or 1), after
    checking that the restricted one's are among them: one added effect puts
    its SD = 0 on the boundary (a chi-square mixture); two at once would need
    a chi-bar-square distribution, which lr_test does not compute."""
    (r_slopes, r_diag), (f_slopes, f_diag) = (
        random_structure(restricted),
        random_structure(full),
    )
    extra = [s for s in f_slopes if s not in r_slopes]
    if not set(r_slopes) <= set(f_slopes) or (f_diag and not r_diag and r_slopes):
        raise ValueError(
            f"the restricted fit's random effects (slopes {list(r_slopes)}, "
            f"{'diagonal' if r_diag else 'unstructured'}) are not nested in the "
            f"full fit's (slopes {list(f_slopes)}, "
            f"{'diagonal' if f_diag else 'unstructured'})."
        )
    if len(extra) > 1:
        raise NotImplementedError(
            f"the full fit adds {len(extra)} random slopes ({extra}) at once: the "
            "null distribution is then a chi-bar-square mixture that lr_test does "
            "not compute. Add one slope at a time."
        )
    return len(extra)


def same_partition(a, b):
    """Whether two codings of the same rows (ints from 0) group them alike."""
    pairs = np.unique(np.asarray(a, np.int64) * (int(b.max()) + 1) + b)
    return len(pairs) == int(a.max()) + 1 == int(b.max()) + 1


# -- the same rows ---------------------------------------------------------------------
def _check_same_rows(r, f, restricted, full):
    a, b = r.design, f.design
    for design, est in ((a, restricted), (b, full)):
        if getattr(design, "fingerprint", None) is None:
            raise ValueError(
                f"lr_test compares two fits of the same rows, and this "
                f"{type(est).__name__} was fitted to a Dask collection, whose rows "
                "it does not keep: lr_test cannot check the data or the nesting. "
                "Fit both models to in-memory data (e.g. X.compute(), y.compute())."
            )
    offsets = [getattr(d, "offset_fingerprint", None) for d in (a, b)]
    if offsets[0] != offsets[1]:
        which = [
            "no offset" if o is None else f"offset {d.offset!r}"
            for o, d in zip(offsets, (a, b))
        ]
        raise ValueError(
            "lr_test compares two fits with the same offset (the same values "
            f"row by row); the {type(restricted).__name__} has {which[0]} and "
            f"the {type(full).__name__} {which[1]}"
            + (" (with other values)" if None not in offsets else "")
            + ". Fit both with the same offset column (a covariate in one and "
            "the offset of the other: make it a covariate of both)."
        )
    rows = (len(a.row_index), len(b.row_index))
    if a.fingerprint == b.fingerprint and np.isclose(
        a.constant, b.constant, rtol=1e-12, atol=1e-9
    ):
        return
    totals = [(d.data.successes.sum(), d.data.trials.sum()) for d in (a, b)]
    if not np.allclose(totals[0], totals[1], rtol=1e-12):
        raise ValueError(
            "lr_test needs two fits of the same data: their successes or trials "
            f"differ ({totals[0][0]:g} of {totals[0][1]:g} in {rows[0]} rows, "
            f"{totals[1][0]:g} of {totals[1][1]:g} in {rows[1]} rows)."
        )
    if rows[0] != rows[1]:
        how = (
            f"different rows ({rows[0]} and {rows[1]}): the same trials as binary "
            "rows and as counts, say"
        )
    else:
        how = "not the same rows (another order, or other sample_weight)"
    why = "The nesting is checked row by row"
    if not np.isclose(a.constant, b.constant, rtol=1e-12, atol=1e-9):
        why = (
            "Their log-likelihoods differ by the binomial coefficients (loglik_ "
            f"{restricted.loglik_:.3f} and {full.loglik_:.3f} here: not "
            "comparable), and the nesting is checked row by row"
        )
    raise ValueError(
        "lr_test compares two fits of the same rows (the same y and "
        "sample_weight, row by row); these two have the same total successes "
        f"and trials ({totals[0][0]:g} of {totals[0][1]:g}) but {how}. {why}. "
        "Fit both models to the same y and sample_weight (skre.binary_rows "
        "turns counts into binary rows)."
    )


def _check_same_rule(restricted, full):
    """Two multilevel fits must approximate their likelihoods alike: both
    the default ``n_quad="auto"`` (each exact to its target), or the same
    fixed rule."""
    rules = [est.n_quad for est in (restricted, full)]
    if rules[0] == rules[1]:
        return
    raise ValueError(
        f"the restricted fit uses {_describe(rules[0])} and the full fit "
        f"{_describe(rules[1])}: their log-likelihoods carry different "
        "approximation errors, which can be as large as the statistic, so their "
        "difference is not a likelihood ratio. Refit both with the same n_quad "
        "(the default 'auto' is exact)."
    )


def _describe(n_quad):
    if n_quad == "auto":
        return "the exact fit (n_quad='auto')"
    if n_quad == 1:
        return "the Laplace approximation (n_quad=1)"
    return f"{n_quad}-node adaptive Gauss-Hermite quadrature (n_quad={n_quad})"


# -- nesting ---------------------------------------------------------------------------
def _joint_cells(a, b):
    """The distinct (cell of a, cell of b) pairs over the input rows with
    trials, and their trials: the finest grouping of the rows both designs
    see."""
    keep = a.row_index >= 0
    trials = np.ones(len(keep)) if a.row_trials is None else a.row_trials
    width = np.int64(len(b.data.codes))
    key = a.row_index[keep].astype(np.int64) * width + b.row_index[keep]
    pairs, inverse = np.unique(key, return_inverse=True)
    weight = np.bincount(inverse.ravel(), weights=trials[keep])
    return pairs // width, pairs % width, weight


def _check_groups(kinds, r_group, f_group, restricted, full):
    """No pooling: each full group inside one restricted group; partial
    pooling: the same groups, or for a one-level model against nested groups
    one of the nested fit's levels (returned as the SD it holds at 0, see
    :func:`check_nested`)."""
    if kinds == ("no pooling", "no pooling"):
        pairs = np.unique(np.c_[f_group, r_group], axis=0)
        split = np.flatnonzero(np.bincount(pairs[:, 0]) > 1)
        if len(split):
            label = full._fit_result.design.groups[split[0]]
            raise ValueError(
                "the two no-pooling models' groups are not nested: the full "
                f"model's group {_show(label)} (and {len(split) - 1} more) holds "
                "rows of several of the restricted model's groups, so the "
                "restricted intercepts are not a special case of the full ones. "
                "lr_test needs every full group inside one restricted group."
            )
    elif kinds == ("multilevel", "multilevel"):
        r_outer, f_outer = (
            getattr(est._fit_result, "outer_codes", None) for est in (restricted, full)
        )
        if r_outer is not None and f_outer is None:
            slopes = random_structure(full)[0]
            raise ValueError(
                f"the restricted model has nested groups (group="
                f"{_show(restricted.group)}) and the full one a single level "
                f"(group={_show(full.group)}): a one-level model is nested in a "
                "two-level one, not the reverse. "
                + (
                    f"Nor the other way: the one-level model has random slopes "
                    f"({list(slopes)}), which the nested one does not."
                    if slopes
                    else "Swap them."
                )
            )
        if r_outer is None and f_outer is not None:
            if same_partition(r_group, f_group):
                return "tau_outer_"
            if not same_partition(r_group, f_outer[f_group]):
                raise ValueError(
                    f"the restricted model's groups (group={_show(restricted.group)}) "
                    "are neither the full model's outer groups nor its (outer, "
                    f"inner) pairs (group={_show(full.group)}): its random "
                    "intercept is not one of the full model's levels."
                )
            return "tau_"
        same = same_partition(r_group, f_group)
        if same and r_outer is not None:
            same = same_partition(r_outer[r_group], f_outer[f_group])
        if not same:
            raise ValueError(
                "the two multilevel models group the rows differently (group="
                f"{_show(restricted.group)} and group={_show(full.group)}): their "
                "random intercepts are not nested. Compare models with the same "
                "groups."
            )


def _check_covariates(kinds, a, b, r_cell, f_cell, weight, f_group):
    """Each free covariate of the restricted design a linear combination, on
    the rows, of the full design's free covariates and its intercept (or,
    for no pooling, its group intercepts)."""
    A = a.data.Z[r_cell][:, ~a.aliased]
    if not A.shape[1]:
        return
    B = b.data.Z[f_cell][:, ~b.aliased]
    within = kinds[1] == "no pooling"
    groups = f_group if within else np.zeros(len(weight), dtype=np.intp)
    outside = _outside_span(A, B, weight, groups)
    if outside.any():
        names = [str(c) for c in a.covariates[~a.aliased][outside]]
        where = (
            "its covariates and group intercepts (no pooling absorbs only covariates "
            "constant within its groups)"
            if within
            else "its covariates and intercept"
        )
        raise ValueError(
            f"the restricted model has covariates the full one lacks ({names}): "
            f"on these rows they are not linear combinations of {where}, so the "
            "models are not nested. The full model may lack them, or their values "
            "differ between the two fits."
        )


def _outside_span(A, B, weight, groups):
    """Columns of A not in the span of B's columns and the indicators of
    ``groups``, in the trials-weighted inner product: a squared residual above
    1e-14 of the total weight, the threshold of the fit's own aliasing
    (:func:`skre._design.aliased_columns`) on standardized columns."""
    total = np.bincount(groups, weights=weight)

    def centred(M):
        means = np.stack(
            [np.bincount(groups, weights=weight * col) for col in M.T], axis=1
        )
        return (M - (means / total[:, None])[groups]) * np.sqrt(weight)[:, None]

    Ac = centred(A)
    if B.shape[1]:
        Bc = centred(B)
        Ac = Ac - Bc @ np.linalg.lstsq(Bc, Ac, rcond=None)[0]
    return np.sum(Ac**2, axis=0) > 1e-14 * weight.sum()
