"""The training data as the numerical core sees them, built once per fit.

:func:`build_design` turns validated rows (:class:`~skre._validation.Prepared`)
into a :class:`Design`: group codes, rows with trials merged by (group,
covariates), covariates standardized and the aliased ones zeroed. Every fit
result owns one; predictions map new covariates through it.
"""

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
from scipy.special import xlogy

from ._core.grouping import Collapsed, collapse, split_offset, standardize
from ._labels import check_label_types, check_labels, factorize
from .exceptions import CollinearityWarning, GroupLabelWarning, warn


@dataclass(frozen=True, eq=False)
class Design:
    """Collapsed, standardized training rows and how to map new rows onto them."""

    data: Collapsed  # covariates standardized, aliased columns zeroed
    z_mean: np.ndarray  # (p,) trials-weighted covariate means
    z_scale: np.ndarray  # (p,) and standard deviations
    aliased: np.ndarray  # (p,) bool: dropped (coefficient 0)
    covariates: np.ndarray  # (p,) names
    groups: np.ndarray  # (G,) labels of the groups with trials
    constant: float  # sum of w log C(n, m): loglik_ = kernel + constant
    n_obs: float  # rows of the expanded data (sum of weights)
    binary_y: bool  # y was given as labels (else counts)
    row_index: np.ndarray  # (n,) int32: each input row's collapsed row, -1 if no trials
    row_trials: np.ndarray | None  # (n,) int32 trials of each input row; None: all 1
    #: digest of the input rows' weighted successes and trials, in order (see
    #: rows_fingerprint); None where the rows were not seen (Dask)
    fingerprint: str | None = field(default=None, kw_only=True)
    #: log-likelihood of the saturated model of the input rows as given (each
    #: row its own probability m / n; constants included), what R's residual
    #: deviance is measured from; None where the rows were not seen (Dask)
    saturated: float | None = field(default=None, kw_only=True)
    #: the name of X's offset column (``offset=``), or None. New rows then
    #: carry their offsets as the last column of ``Z`` (see :meth:`offset_of`)
    offset: str | None = field(default=None, kw_only=True)
    #: digest of the input rows' offsets (lr_test compares it), None without
    offset_fingerprint: str | None = field(default=None, kw_only=True)

    @cached_property
    def group_index(self):
        return pd.Index(self.groups)

    @cached_property
    def group_successes(self):
        return self.data.group_sum(self.data.successes)

    @cached_property
    def group_trials(self):
        return self.data.group_sum(self.data.trials)

    @property
    def degenerate(self):
        """0.0 when every trial failed, 1.0 when every trial succeeded, else None."""
        M, N = self.data.successes.sum(), self.data.trials.sum()
        return 0.0 if M == 0 else 1.0 if M == N else None

    def codes_for(self, labels, name="MultilevelBinomial", column=None):
        """Training codes of ``labels`` (-1 where the group was not seen in fit).

        Refuses a boolean label where fit saw the number equal to it, or the
        reverse (``True`` and ``1``: pandas would match them); warns when most
        labels are unseen and of another type than in fit (integer ids in
        fit, the same ids as strings now). ``column`` names the group column.
        """
        if labels is None:
            return None
        check_labels(labels)
        check_label_types(labels, column, seen=self.groups)
        codes = self.group_index.get_indexer(labels)
        if np.mean(codes < 0) > 0.5:
            now = pd.api.types.infer_dtype(labels, skipna=True)
            then = pd.api.types.infer_dtype(self.groups, skipna=True)
            if now != then:
                warn(
                    f"{name}: {np.mean(codes < 0):.0%} of the group labels were not "
                    f"seen in fit, and they are of another type ({now}, dtype "
                    f"{labels.dtype}) than the labels seen in fit ({then}, dtype "
                    f"{self.groups.dtype}): they are all predicted as new groups. "
                    "Convert the group column to the type used in fit.",
                    GroupLabelWarning,
                )
        return codes

    @cached_property
    def offset_mean(self):
        """The training rows' trials-weighted mean offset (0.0 without one):
        with the covariates' means, where the population of new groups is
        taken."""
        data = self.data
        offset = getattr(data, "offset", None)  # (Dask's group counts: none)
        if offset is None:
            return 0.0
        return float(data.trials @ offset / data.trials.sum())

    def mean_row(self):
        """A new row at the trials-weighted means (covariates, offset), in
        the layout of new rows' Z."""
        row = np.asarray(self.z_mean, dtype=float)
        if self.offset is not None:
            row = np.r_[row, self.offset_mean]
        return row[None, :]

    def offset_of(self, Z):
        """The offsets of new rows ``Z`` (their last column when the fit
        had an offset; else 0.0)."""
        return Z[:, len(self.z_mean)] if self.offset is not None else 0.0

    def scaled(self, Z, aliased=None):
        """Covariates as the core saw them in fit: standardized, aliased ones
        (``aliased``, by default the fit's) zeroed; an offset column of
        ``Z`` is left out (:meth:`offset_of`)."""
        Z = Z[:, : len(self.z_mean)]
        with np.errstate(over="ignore", invalid="ignore"):
            Zs = (Z - self.z_mean) / self.z_scale
        Zs[:, self.aliased if aliased is None else aliased] = 0.0
        return Zs

    def linear_predictor(self, Z, intercept, beta):
        """``intercept + scaled(Z) @ beta``, never NaN for finite ``Z``.

        Rows whose covariates are so large that the plain product overflows
        are summed in log space: the result is then ``+-inf`` (a probability of
        exactly 1 or 0, the limit), or finite when the terms cancel.
        """
        with np.errstate(over="ignore", invalid="ignore"):
            eta = intercept + self.scaled(Z) @ beta
        bad = ~np.isfinite(eta)
        if bad.any():
            eta[bad] = _robust_linear(
                Z[bad, : len(self.z_mean)],
                self.z_mean,
                np.where(self.aliased, 0.0, beta / self.z_scale),
            )
            eta[bad] += intercept
        return eta + self.offset_of(Z)

    def unscale(self, intercept, coef):
        """Map (intercept, slopes) on standardized covariates to the user's scale."""
        coef = coef / self.z_scale
        return float(intercept - coef @ self.z_mean), coef

    def user_map(self, intercept_first):
        """Rows: user-scale (intercept, slopes) as linear functions of the core's x.

        ``x`` is ``(intercept, beta_std)`` when ``intercept_first`` (the pooled
        models) or ``(beta_std, b, ...)`` (the multilevel core).
        """
        mean, scale = self.z_mean, self.z_scale
        p = len(mean)
        C = np.zeros((1 + p, 1 + p))
        a, B = (0, slice(1, None)) if intercept_first else (p, slice(0, p))
        C[0, a] = 1.0
        C[0, B] = -mean / scale
        C[1:, B] = np.diag(1.0 / scale)
        return C

    def group_mean_probability(self, offset_rows, shift):
        """Trials-weighted mean of ``expit(offset + shift[group])`` per group."""
        from scipy.special import expit

        data = self.data
        p = expit(offset_rows + shift[data.codes])
        return data.group_sum(data.trials * p) / self.group_trials


def _robust_linear(Z, mean, slope):
    """``(Z - mean) @ slope`` row by row in log space (no overflow to NaN)."""
    D = 0.5 * Z - 0.5 * mean  # finite for finite Z and mean
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        log_terms = np.log(np.abs(D)) + np.log(np.abs(slope))
        sign = np.sign(D) * np.sign(slope)
    log_terms = np.where(sign == 0, -np.inf, log_terms)
    top = np.max(log_terms, axis=1)
    top = np.where(np.isfinite(top), top, 0.0)
    rel = np.sum(sign * np.exp(log_terms - top[:, None]), axis=1)
    with np.errstate(over="ignore", invalid="ignore"):
        out = 2.0 * (rel * np.exp(top))
    return np.where(rel == 0, 0.0, out)


def build_design(est, rows, *, within_groups=False):
    """Code, collapse and standardize validated rows; find aliased covariates.

    Returns ``(design, Z_unaliased)``: the second is the standardized covariates
    before any column was zeroed (no pooling's complete-pooling fallback keeps
    the group-level covariates that its within-group fit drops).

    Standardizing the collapsed rows (not the input rows) makes the fit a
    function of the data alone: row order, weights and repeated rows give
    bit-identical results.
    """
    if rows.labels is None:
        codes = np.zeros(len(rows.trials), dtype=np.intp)
        uniques = np.array(["(all)"], dtype=object)
    else:
        codes, uniques = factorize(rows.labels)
    keep = rows.trials > 0
    if keep.all():  # every label has rows with trials: no copies (10^6 x 5: 30 ms)
        used = np.arange(len(uniques))
        Z, successes, trials = rows.Z, rows.successes, rows.trials
    else:
        used, codes = np.unique(codes[keep], return_inverse=True)
        Z, successes, trials = rows.Z[keep], rows.successes[keep], rows.trials[keep]
    data, inverse = collapse(
        codes.ravel(), Z, successes, trials, len(used), return_inverse=True
    )
    row_index = np.full(len(keep), -1, dtype=np.int32)
    row_index[keep] = inverse
    offset = getattr(rows, "offset", None)
    if offset is not None:  # (rows merged only where their offsets are equal)
        split_offset(data)
    data.Z, z_mean, z_scale = standardize(data.Z, data.trials)
    Z_unaliased = data.Z.copy() if within_groups and data.Z.shape[1] else data.Z
    aliased = _drop_aliased(est, data, rows.covariates, within_groups)
    design = Design(
        data,
        z_mean,
        z_scale,
        aliased,
        rows.covariates,
        uniques[used],
        rows.constant,
        rows.n_obs,
        rows.binary_y,
        row_index,
        _row_trials(rows.trials),
        fingerprint=rows_fingerprint(rows.successes, rows.trials),
        saturated=rows.constant + saturated_kernel(rows),
        offset=offset,
        offset_fingerprint=None if offset is None else _digest(rows.Z[:, -1]),
    )
    return design, Z_unaliased


def saturated_kernel(rows):
    """``sum S log(S/T) + (T-S) log(1 - S/T)`` over the input rows (S, T their
    weighted successes and trials): the kernel of the model with one
    probability per row, R's saturated model of the data as given. Binary rows
    (and count rows at 0/n or n/n) contribute 0, so binary data have 0.
    """
    if rows.binary_y:
        return 0.0
    S, T = rows.successes, rows.trials
    some = T > 0
    S, T = S[some], T[some]
    return float(np.sum(xlogy(S, S / T) + xlogy(T - S, (T - S) / T)))


def rows_fingerprint(successes, trials):
    """SHA-256 of the rows' (weighted) successes and trials, in row order.

    Two fits with equal fingerprints were given the same response row by row
    (what :func:`skre.lr_test` needs before it compares their designs row by
    row). About 9 ms for 10^6 rows.
    """
    return _digest(successes, trials)


def _digest(*columns):
    """SHA-256 of the row count and the ``columns`` (floats, in row order)."""
    digest = hashlib.sha256(np.int64(len(columns[0])).tobytes())
    for values in columns:
        values = np.ascontiguousarray(values, dtype=np.float64)
        digest.update(memoryview(values).cast("B"))
    return digest.hexdigest()


def _row_trials(trials):
    """Each row's (weighted) trials, compactly: None when all are 1, int32 when
    whole numbers (what simulate needs), else float."""
    if np.all(trials == 1.0):
        return None
    if np.all(trials == np.round(trials)) and trials.max() < 2**31:
        return trials.astype(np.int32)
    return trials


def _drop_aliased(est, data, names, within_groups):
    """Zero covariates that are not identified; warn, naming them.

    An aliased covariate (constant, or a linear combination of the others or
    of the intercepts) gets coefficient 0, as R's ``NA``.
    """
    aliased = aliased_columns(data, within_groups)
    if aliased.any():
        overall = aliased_columns(data, False) if within_groups else aliased
        data.Z[:, aliased] = 0.0
        warn_aliased(est, names, aliased, overall)
    return aliased


def warn_aliased(est, names, aliased, overall):
    """Warn about the ``aliased`` covariates of ``names``, saying for each
    whether it is aliased over all rows (``overall``) or only next to the
    per-group intercepts. Shared with the Dask path."""
    for mask, where in (
        (aliased & overall, "constant or a linear combination of the other covariates"),
        (
            aliased & ~overall,
            "constant within every group (or a combination of other "
            "covariates within groups), so not identified next to the "
            "per-group intercepts "
            "(MultilevelBinomial does identify group-level covariates)",
        ),
    ):
        if mask.any():
            shown = ", ".join(repr(str(c)) for c in names[mask])
            warn(
                f"{type(est).__name__}: covariate {shown} is {where}; it "
                "is dropped from the fit (coefficient 0). Remove it to "
                "silence this warning.",
                CollinearityWarning,
            )


def aliased_columns(data, within_groups):
    """Boolean mask of covariates collinear with the intercept(s) and each other.

    Works on the trials-weighted cross-product of the covariates centred overall
    (a shared intercept) or within each group (one intercept per group, as in no
    pooling), by Cholesky in column order: a column whose squared residual
    norm, after the columns kept before it, is below ``1e-14`` of the total
    weight (its norm: the covariates are standardized) is aliased, i.e.
    collinear to 1e-7 relative; of two collinear columns the later one goes,
    as in R.
    """
    Z = data.Z
    aliased = np.zeros(Z.shape[1], dtype=bool)
    if Z.shape[1] == 0:
        return aliased
    w = data.trials
    if np.all(w == 1.0):  # binary rows: no (rows x p) product
        gram = Z.T @ Z
    else:
        gram = Z.T @ (w[:, None] * Z)
    if within_groups:
        W = data.group_sum(w)
        S = data.weighted_group_sum(w, Z)
        gram -= (S / np.where(W > 0, W, np.inf)[:, None]).T @ S
    else:
        total = w @ Z  # a product: numpy's sums down the rows are slow
        gram -= np.outer(total, total) / w.sum()
    threshold = 1e-14 * w.sum()
    A = gram.copy()
    for j in range(len(A)):  # column order: the later of two collinear columns goes
        if A[j, j] <= threshold:
            aliased[j] = True
            continue
        A -= np.outer(A[:, j] / A[j, j], A[j, :])
    return aliased
