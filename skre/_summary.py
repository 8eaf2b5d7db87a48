"""Model summaries: the tables of R's ``summary(glm)`` and lme4's ``summary(glmer)``.

A presentation layer over a fitted estimator's ``vcov``, ``confint`` and
information criteria; it computes nothing the estimator does not expose.
"""

import html
import math
import textwrap

import numpy as np
import pandas as pd
from scipy import stats

from ._labels import group_column_name

_STARS = ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, "."))
_LEGEND = "Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1"


def _na(v):
    """R's spelling of a value that is not a finite number."""
    return "NA" if np.isnan(v) else ("Inf" if v > 0 else "-Inf")


def _decimals(v, digits):
    """Fewest decimals showing ``v`` to ``digits`` significant digits
    (R's ``format``)."""
    target = float(f"{v:.{digits}g}")
    for places in range(16):
        if abs(round(v, places) - target) <= 1e-12 * abs(target):
            return places
    return 15


def _fixed(values, digits, cap):
    """Format a column with common decimals, as R's
    ``format(round(x, cap), digits)``."""
    values = np.asarray(values, dtype=float)
    ok = np.isfinite(values)
    if not ok.any():
        return [_na(v) for v in values]
    rounded = np.round(values, cap)
    places = min(cap, max(_decimals(v, digits) for v in rounded[ok]))
    return [f"{v:.{places}f}" if f else _na(v) for v, f in zip(rounded, ok)]


def _coef_columns(est, se, digits=4):
    """Estimate and SE columns as R's ``printCoefmat`` (rounded to the smallest)."""
    both = np.abs(np.r_[est, se])
    both = both[np.isfinite(both) & (both > 0)]
    if len(both) and (both.min() < 1e-8 or both.max() >= 1e12):
        cells = [
            f"{v:.{digits - 1}e}" if np.isfinite(v) else _na(v) for v in np.r_[est, se]
        ]
    else:
        cap = (
            max(1, digits - (1 + math.floor(math.log10(both.min()))))
            if len(both)
            else 1
        )
        cells = _fixed(np.r_[est, se], digits, cap)
    return cells[: len(est)], cells[len(est) :]


_EPS = float(np.finfo(float).eps)


def _pvalues(p, digits=3, eps=_EPS):
    """R's ``format.pval``: fixed and scientific entries formatted as two groups."""
    p = np.asarray(p, dtype=float)
    out = ["NA"] * len(p)
    tiny = p < eps
    expo = np.floor(np.log10(np.where(p > 0, p, 1e-50)))
    fixp = np.isfinite(p) & ~tiny & ((expo >= -3) | ((expo == -4) & (digits > 1)))
    sci = np.isfinite(p) & ~tiny & ~fixp
    for i, s in zip(np.flatnonzero(fixp), _fixed(p[fixp], digits, 15)):
        out[i] = s
    if sci.any():
        m = max(
            _decimals(v / 10.0 ** math.floor(math.log10(v)), digits) for v in p[sci]
        )
        for i in np.flatnonzero(sci):
            out[i] = f"{p[i]:.{m}e}"
    wide = max((len(out[i]) for i in np.flatnonzero(fixp | sci)), default=0) > 6
    for i in np.flatnonzero(tiny):
        out[i] = ("< " if wide else "<") + f"{eps:.0e}"
    return out


def _text_table(index, columns, cells, left=(), indent=""):
    """Right-aligned columns (``left`` ones left-aligned), row names left-aligned."""
    rows = [[str(i), *r] for i, r in zip(index, cells)]
    head = ["", *columns]
    widths = [max(len(r[j]) for r in [head, *rows]) for j in range(len(head))]

    def line(r):
        parts = [
            c.ljust(w) if j == 0 or j - 1 in left else c.rjust(w)
            for j, (c, w) in enumerate(zip(r, widths))
        ]
        return (indent + " ".join(parts)).rstrip()

    return "\n".join(line(r) for r in [head, *rows])


def _html_value(v):
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _group_name(est):
    return str(group_column_name(est))


def _slopes_random(est, ci):
    """A random-slope fit's random-effects table (variances, SDs and the
    correlation columns, lme4's layout) and the intervals of its SDs and
    correlations (the rows of ``confint`` after the fixed effects)."""
    names = ["(Intercept)", *map(str, est.random_slopes_)]
    S = est.random_covariance_
    sd = np.sqrt(np.diag(S))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = S / np.outer(sd, sd)
    table = pd.DataFrame({"variance": np.diag(S), "std_dev": sd}, index=names)
    if est.covariance != "diagonal":
        for j, name in enumerate(names[:-1]):
            column = np.where(np.arange(len(names)) > j, corr[:, j], np.nan)
            table[f"corr {name}"] = column
    fixed_rows = 1 + len(est.covariates_)
    return table, ci.iloc[fixed_rows:]


class Summary:
    """Tables summarizing a fitted estimator, printed like R's ``summary``.

    Build it with the estimators' ``summary`` method (or :meth:`from_estimator`).
    Printed, it is a text report laid out like R's; in Jupyter it renders as
    HTML; its tables are pandas objects.

    Read more in the :ref:`User Guide <summary_guide>`.

    Attributes
    ----------
    fixed_effects : DataFrame
        Rows ``intercept`` and the covariates (the covariates only for no
        pooling, which has one intercept per group); columns ``estimate``,
        ``std_error``, ``z``, ``p_value`` (two-sided, normal) and the interval
        ends (``"2.5%"``, ``"97.5%"``). Aliased covariates are NaN (R's NA).
    random_effects : DataFrame or None
        Multilevel model only: one row named by the group column; columns
        ``tau``, ``tau_sq`` and the interval for ``tau``.
    fit : Series
        ``logLik`` (binomial constants included), ``AIC``, ``BIC``,
        ``-2 logLik`` (what lme4's summary calls deviance), ``residual
        deviance`` (``2 (logLik_saturated - logLik)``, R's ``deviance(glm)``
        and its summary's "Residual deviance", measured from the model with
        one probability per row as given: binary rows and their counts differ,
        as in R; NaN for a Dask fit), ``df.resid``, ``observations``,
        ``groups``, ``trials``, ``converged``, ``boundary`` (multilevel only)
        and ``iterations``.
    title : str
        The first line: how the model was fit.
    formula : str
        The equivalent R formula, with the group column's name.
    notes : list of str
        Lines printed after the tables.
    group_name : str
        The group column's name.
    level : float
        Coverage of the intervals.
    method : {"wald", "profile"}
        How the intervals were computed.
    profile : bool
        Whether the estimator offers ``method="profile"`` (no pooling does
        not); a Wald table says how to get them.

    See Also
    --------
    skre.MultilevelBinomial.confint : The intervals alone.
    skre.MultilevelBinomial.vcov : The covariance of the estimates.

    Notes
    -----
    ``logLik``, ``AIC``, ``BIC`` and ``-2 logLik`` include the binomial
    constants, as R's ``glm`` and lme4 with ``nAGQ = 1``; lme4 with
    ``nAGQ > 1`` drops a constant, so its printed numbers are smaller. The
    residual deviance does not depend on them; the pooled models print it as
    R's ``summary(glm)`` does.

    Examples
    --------
    >>> from skre import MultilevelBinomial
    >>> from skre.datasets import load_rats
    >>> X, y = load_rats(return_X_y=True)
    >>> print(MultilevelBinomial(group="batch").fit(X, y).summary())
    Generalized linear mixed model fit by maximum likelihood (Adaptive Gauss-Hermite
      Quadrature, nAGQ = 25) [MultilevelBinomial]
     Family: binomial  ( logit )
    Formula: cbind(successes, trials - successes) ~ 1 + (1 | batch)
    <BLANKLINE>
         AIC      BIC   logLik -2 logLik df.resid
       319.6    324.1   -157.8     315.6       69
    <BLANKLINE>
    Random effects:
     Groups Name        Variance Std.Dev.
     batch  (Intercept) 0.4544   0.6741
    Number of obs: 71, groups:  batch, 71
    <BLANKLINE>
    Fixed effects:
                Estimate Std. Error z value Pr(>|z|)
    (Intercept)   -1.939      0.122  -15.89   <2e-16 ***
    ---
    Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1
    <BLANKLINE>
    Confidence intervals (95%, Wald, tau's on the log scale: poor near tau = 0;
      likelihood-ratio intervals: summary(method="profile")):
                   2.5%   97.5%
    (Intercept) -2.1782 -1.6998
    tau          0.4676  0.9719
    """

    def __init__(
        self,
        fixed_effects,
        random_effects,
        fit,
        *,
        title,
        formula,
        notes=(),
        group_name="group",
        level=0.95,
        method="wald",
        profile=True,
    ):
        self.fixed_effects = fixed_effects
        self.random_effects = random_effects
        self.fit = fit
        self.title, self.formula, self.notes = title, formula, list(notes)
        self.group_name, self.level, self.method = group_name, level, method
        self.profile = profile
        self.random_intervals = None  # random slopes: the SDs' and correlations'

    @classmethod
    def from_estimator(cls, est, level=0.95, method="wald"):
        """Summarize a fitted :class:`~skre.CompletePoolingBinomial`,
        :class:`~skre.NoPoolingBinomial` or :class:`~skre.MultilevelBinomial`."""
        multilevel, no_pooling = hasattr(est, "tau_"), hasattr(est, "group_intercepts_")
        covariates = list(map(str, est.covariates_))
        group = _group_name(est)
        if no_pooling:
            if method != "wald":
                raise ValueError(
                    "NoPoolingBinomial's summary has Wald intervals only "
                    f"(method='wald'); got method={method!r}."
                )
            names, estimate = covariates, np.asarray(est.coef_, dtype=float)
            se = np.sqrt(np.diag(est.vcov().to_numpy()))
            z = stats.norm.ppf(0.5 + level / 2)
            a = 100 * (1 - level) / 2
            ci = pd.DataFrame(
                {f"{a:g}%": estimate - z * se, f"{100 - a:g}%": estimate + z * se},
                index=names,
            )
        else:
            names = ["intercept", *covariates]
            estimate = np.r_[est.intercept_, est.coef_].astype(float)
            se = np.sqrt(np.diag(est.vcov().to_numpy()))
            ci = est.confint(level, method)
        aliased = np.zeros(len(names), dtype=bool)
        design = est._fit_result.design
        aliased[len(names) - len(covariates) :] = design.aliased
        estimate, se = (
            np.where(aliased, np.nan, estimate),
            np.where(aliased, np.nan, se),
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            zval = estimate / se
        fixed = pd.DataFrame(
            {
                "estimate": estimate,
                "std_error": se,
                "z": zval,
                "p_value": 2 * stats.norm.sf(np.abs(zval)),
            },
            index=names,
        )
        fixed = fixed.join(ci.loc[names])
        fixed.loc[aliased] = np.nan

        random = None
        terms = [c if c.isidentifier() else f"`{c}`" for c in covariates]  # R quoting
        formula_terms = ["0", group, *terms] if no_pooling else ["1", *terms]
        offset = getattr(getattr(est._fit_result, "design", None), "offset", None)
        if offset is not None:
            quoted = offset if offset.isidentifier() else f"`{offset}`"
            formula_terms.append(f"offset({quoted})")
        random_ci = None
        slopes = getattr(est, "random_slopes_", None)
        if multilevel and slopes is not None:
            random, random_ci = _slopes_random(est, ci)
            bar = "||" if est.covariance == "diagonal" else "|"
            inside = " + ".join(["1", *map(str, slopes)])
            formula_terms.append(f"({inside} {bar} {group})")
        elif multilevel and isinstance(est.group, list):  # (1 | outer/inner)
            vc = est.variance_components_
            random = pd.DataFrame(
                {"variance": vc["vcov"].to_numpy(), "std_dev": vc["sdcor"].to_numpy()},
                index=list(vc["grp"]),
            )
            random_ci = ci.loc[["tau", "tau_outer"]].set_axis(list(vc["grp"]))
            outer, inner = (str(g) for g in est.group)
            formula_terms.append(f"(1 | {outer}/{inner})")
            group = f"{inner}:{outer}"
        elif multilevel:
            tau_ci = (
                est.confint(level, method).loc[["tau"]].rename(index={"tau": group})
            )
            random = pd.DataFrame(
                {"tau": [est.tau_], "tau_sq": [est.tau_**2]}, index=[group]
            ).join(tau_ci)
            formula_terms.append(f"(1 | {group})")
        if multilevel:
            nodes = getattr(est._fit_result, "n_quad", None)
            if isinstance(nodes, str):  # random slopes' trapezoid rule
                kind = "adaptive trapezoid rule in sinh(v)"
            elif nodes is None:  # a degenerate fit has nothing to integrate
                kind = "degenerate data, no quadrature"
            elif np.ndim(nodes) == 0 and nodes == 1:
                kind = "Laplace Approximation"
            elif np.ndim(nodes) == 0:
                kind = f"Adaptive Gauss-Hermite Quadrature, nAGQ = {int(nodes)}"
                if slopes is not None:
                    kind += " per dimension"
            else:
                low, high = int(np.min(nodes)), int(np.max(nodes))
                kind = f"Adaptive Gauss-Hermite Quadrature, {low} to {high} nodes"
            title = f"Generalized linear mixed model fit by maximum likelihood ({kind})"
        else:
            kind = (
                "no pooling: one intercept per group"
                if no_pooling
                else "complete pooling"
            )
            title = f"Generalized linear model fit by maximum likelihood ({kind})"
        title += f" [{type(est).__name__}]"

        n_params = est.n_params_
        saturated = getattr(design, "saturated", None)
        fit = {
            "logLik": est.loglik_,
            "AIC": est.aic_,
            "BIC": est.bic_,
            "-2 logLik": -2 * est.loglik_ + 0.0,  # never -0.0
            # >= 0 (no model beats one probability per row): rounding is clipped
            "residual deviance": (
                np.nan if saturated is None else max(2 * (saturated - est.loglik_), 0)
            ),
            "df.resid": est.nobs_ - n_params,
            "observations": est.nobs_,
            "groups": len(est.groups_),
            **(
                {"outer groups": len(est.outer_groups_)}
                if hasattr(est, "outer_groups_")
                else {}
            ),
            "trials": float(design.data.trials.sum()),
            "converged": bool(est.converged_),
        }
        if multilevel:
            fit["boundary"] = bool(est.boundary_)
        fit["iterations"] = int(est.n_iter_)
        notes = []
        if no_pooling:
            notes.append(
                f"One intercept per group ({len(est.groups_)} groups; see "
                "group_intercepts_ and group_estimates());\nthe table shows the "
                "shared slopes."
            )
        if aliased.any():
            notes.append(
                f"Coefficients not defined because of singularities: "
                f"{', '.join(np.array(names)[aliased])}."
            )
        limit = design.degenerate
        if limit is not None and np.isinf(est.intercept_):
            what = "failure" if limit == 0 else "success"
            notes.append(
                f"Every trial is a {what}: the intercept is {'-' if limit == 0 else ''}"
                "Inf (probability "
                f"{int(limit)}) and slopes are not identified; group_estimates() "
                "and prediction intervals are one-sided and exact."
            )
        elif multilevel and est.boundary_ and hasattr(est, "outer_groups_"):
            text = est._fit_result.boundary_text()
            notes.append("boundary (singular) fit: " + text)
        elif multilevel and est.boundary_:
            notes.append(
                "boundary (singular) fit: tau = 0; the fit equals complete pooling."
            )
        if not est.converged_:
            notes.append(f"The fit did not converge in {est.n_iter_} iterations.")
        outcome = "y" if design.binary_y else "cbind(successes, trials - successes)"
        formula = f"{outcome} ~ " + " + ".join(formula_terms)
        summary = cls(
            fixed,
            random,
            pd.Series(fit, name="value", dtype=object),
            title=title,
            formula=formula,
            notes=notes,
            level=level,
            method=method,
            group_name=None if est.group is None else group,
            profile=not no_pooling and random_ci is None,
        )
        summary.random_intervals = random_ci
        return summary

    # -- text -------------------------------------------------------------------------
    def _fixed_text(self):
        fe = self.fixed_effects
        if fe.empty:
            return "(none)"
        est, se = _coef_columns(fe["estimate"].to_numpy(), fe["std_error"].to_numpy())
        z = _fixed(fe["z"].to_numpy(), 4, 3)
        p = _pvalues(fe["p_value"].to_numpy())
        stars = [next((s for cut, s in _STARS if v < cut), "") for v in fe["p_value"]]
        index = ["(Intercept)" if i == "intercept" else i for i in fe.index]
        cells = list(zip(est, se, z, p, stars))
        return (
            _text_table(
                index,
                ["Estimate", "Std. Error", "z value", "Pr(>|z|)", ""],
                cells,
                left={4},
            )
            + "\n---\n"
            + _LEGEND
        )

    def _ci_text(self):
        frames = [self.fixed_effects.iloc[:, 4:]]
        if self.random_intervals is not None:
            frames.append(self.random_intervals)
        elif self.random_effects is not None:
            frames.append(self.random_effects.iloc[:, 2:].set_axis(["tau"]))
        ci = pd.concat(frames)
        if ci.empty:
            return ""
        cells = [
            [f"{v:.4f}" if np.isfinite(v) else _na(v) for v in r] for r in ci.to_numpy()
        ]
        index = ["(Intercept)" if i == "intercept" else i for i in ci.index]
        return f"\n\n{self._ci_heading()}\n" + _text_table(
            index, list(ci.columns), cells
        )

    def _ci_heading(self):
        """Which intervals these are, and (for Wald ones) how to get the others."""
        level = f"{100 * self.level:g}%"
        if self.method == "profile":
            return f"Confidence intervals ({level}, profile likelihood):"
        if self.method != "wald":
            return f"Confidence intervals ({level}, {self.method}):"
        text = f"Confidence intervals ({level}, Wald"
        if self.random_intervals is not None and "outer groups" in self.fit:
            text += ", SDs on the log scale"
        elif self.random_intervals is not None:
            text += ", SDs on the log scale, correlations on Fisher's z"
        elif self.random_effects is not None:
            text += ", tau's on the log scale: poor near tau = 0"
        if self.profile:
            text += '; likelihood-ratio intervals: summary(method="profile")'
        return textwrap.fill(text + "):", 80, subsequent_indent="  ")

    def __str__(self):
        f = self.fit
        crit = ["AIC", "BIC", "logLik", "-2 logLik", "df.resid"]
        vals = [f"{f[k]:.1f}" for k in crit[:4]] + [f"{f['df.resid']:g}"]
        widths = [max(8, len(k), len(v)) for k, v in zip(crit, vals)]
        out = [
            textwrap.fill(self.title, 80, subsequent_indent="  "),
            " Family: binomial  ( logit )",
            f"Formula: {self.formula}",
            "",
            " ".join(k.rjust(w) for k, w in zip(crit, widths)),
            " ".join(v.rjust(w) for v, w in zip(vals, widths)),
            *self._deviance_lines(),
            "",
        ]
        obs = f"Number of obs: {f['observations']:g}"
        if self.group_name is not None:
            obs += f", groups:  {self.group_name}, {f['groups']}"
        if "outer groups" in f:
            obs += f"; {self.random_effects.index[1]}, {f['outer groups']}"
            out += ["Random effects:", self._nested_table(), obs, ""]
        elif self.random_intervals is not None:
            out += ["Random effects:", self._slopes_table(), obs, ""]
        elif self.random_effects is not None:
            re = self.random_effects.iloc[0]
            var, sd = _fixed([re["tau_sq"], re["tau"]], 4, 15)
            cells = [[self.group_name, "(Intercept)", var, sd]]
            table = _text_table(
                [""],
                ["Groups", "Name", "Variance", "Std.Dev."],
                cells,
                left={0, 1, 2, 3},
            )
            out += ["Random effects:", table, obs, ""]
        else:
            out += [obs, ""]
        out.append(
            ("Fixed effects:" if self.random_effects is not None else "Coefficients:")
            + "\n"
            + self._fixed_text()
            + self._ci_text()
        )
        if self.notes:
            out += [""] + self.notes
        return "\n".join(out)

    def _nested_table(self):
        """lme4's random-effects table of ``(1 | outer/inner)``."""
        re = self.random_effects
        var = _fixed(re["variance"].to_numpy(), 4, 15)
        sd = _fixed(re["std_dev"].to_numpy(), 4, 15)
        cells = [[g, "(Intercept)", v, d] for g, v, d in zip(re.index, var, sd)]
        head = ["Groups", "Name", "Variance", "Std.Dev."]
        return _text_table([""] * len(cells), head, cells, left=set(range(len(head))))

    def _slopes_table(self):
        """lme4's random-effects table with its Corr columns."""
        re = self.random_effects
        var = _fixed(re["variance"].to_numpy(), 4, 15)
        sd = _fixed(re["std_dev"].to_numpy(), 4, 15)
        corr_cols = [c for c in re.columns if c.startswith("corr ")]
        cells = []
        for i, name in enumerate(re.index):
            corr = [
                f"{re[c].iloc[i]:.2f}"
                for c in corr_cols[:i]
                if np.isfinite(re[c].iloc[i])
            ]
            row = [self.group_name if i == 0 else "", name, var[i], sd[i]]
            if corr_cols:
                row.append(" ".join(corr))
            cells.append(row)
        head = ["Groups", "Name", "Variance", "Std.Dev."] + ["Corr"] * bool(corr_cols)
        return _text_table([""] * len(cells), head, cells, left=set(range(len(head))))

    def _deviance_lines(self):
        """R's summary(glm) line, for the models that are glms."""
        dev = self.fit.get("residual deviance", np.nan)
        if self.random_effects is not None or not np.isfinite(dev):
            return []
        return [
            f"Residual deviance: {dev:.5g}  on {self.fit['df.resid']:g}  "
            "degrees of freedom"
        ]

    __repr__ = __str__

    def _repr_html_(self):
        esc = html.escape
        parts = [
            f"<h4>{esc(self.title)}</h4>",
            "<p>Family: binomial (logit)<br>"
            f"Formula: <code>{esc(self.formula)}</code></p>",
            "<h5>Fit</h5>",
            self.fit.map(_html_value).to_frame().to_html(),
        ]
        if self.random_effects is not None:
            parts += [
                "<h5>Random effects</h5>",
                self.random_effects.to_html(float_format=lambda v: f"{v:.4g}"),
            ]
        parts += [
            "<h5>Fixed effects</h5>",
            self.fixed_effects.to_html(float_format=lambda v: f"{v:.4g}"),
        ]
        parts += [f"<p>{esc(n)}</p>" for n in self.notes]
        return '<div class="skre-summary">' + "\n".join(parts) + "</div>"
