"""lme4-style formulas in, a :class:`MultilevelBinomial` and its X, y out.

The fixed-effect part is built by formulaic (the maintained Python formula
library: interactions, categorical coding, transforms such as ``np.log(x)``);
this module only splits off the response and the random-effect term, which
formulaic does not know, and checks them.
"""

import re
import warnings

import numpy as np
import pandas as pd

from ._multilevel import MultilevelBinomial

_RANDOM = re.compile(r"\(([^()|]*?)(\|\|?)([^()|]*)\)")
_CBIND = re.compile(r"^\s*cbind\s*\((.*)\)\s*$", re.DOTALL)
_NAME = r"[A-Za-z_.][\w.]*"
_NOT_YET = (
    "skre fits one grouping factor, with a random intercept and up to two "
    "random slopes, (1 | g), (1 + x | g) or (1 + x || g), or two nested ones "
    "with a random intercept each, (1 | a/b); crossed groups, random slopes "
    "of nested groups and more than two levels are not available yet"
)


class FormulaModel(tuple):
    """The estimator, X and y of a formula, and the coding for new data.

    What :func:`from_formula` returns: a tuple ``(estimator, X, y)`` (so
    ``est, X, y = from_formula(...)`` works) with :meth:`design`, which codes
    new rows as the formula coded the data.

    Parameters
    ----------
    estimator : MultilevelBinomial
        Unfitted, ``group`` set to the formula's grouping factor (or to
        ``[a, b]`` for nested ``(1 | a/b)``).
    X : DataFrame
        The group column (the columns ``a``, ``b`` for ``(1 | a/b)``), then
        the fixed-effect columns (no intercept column: the estimator has its
        own).
    y : ndarray
        Binary labels, or ``[successes, trials]`` for a ``cbind`` response.
    formula : str
        The formula as given.
    spec : formulaic.ModelSpec
        The fixed part's columns as formulaic describes them.
    group : str or list of str
        The grouping column, or the outer and inner columns of ``(1 | a/b)``.
    offsets : tuple of str, default=()
        The expressions of the formula's ``offset(...)`` terms.
    pairs : dict or None, default=None
        For ``(1 | a:b)``: the data's (a, b) pairs and their labels, which
        :meth:`design` gives new rows of the same pairs.

    See Also
    --------
    from_formula : Builds one.

    Examples
    --------
    >>> import pandas as pd
    >>> from skre import from_formula
    >>> d = pd.DataFrame({"g": [1, 1, 2, 2, 3, 3], "x": [0, 1, 0, 1, 0, 1],
    ...                   "y": [0, 1, 1, 1, 0, 0]})
    >>> model = from_formula("y ~ x + (1 | g)", d)
    >>> est, X, y = model
    >>> model.formula, list(X.columns)
    ('y ~ x + (1 | g)', ['g', 'x'])
    """

    def __new__(cls, estimator, X, y, formula, spec, group, offsets=(), pairs=None):
        self = super().__new__(cls, (estimator, X, y))
        self.formula, self._spec, self._group = formula, spec, group
        self._offsets = tuple(offsets)
        self._pairs = pairs or {}
        return self

    @property
    def spec(self):
        """The fixed part's columns as formulaic describes them."""
        return self._spec

    @property
    def group(self):
        """The grouping column, or the outer and inner columns of ``(1 | a/b)``."""
        return self._group

    @property
    def estimator(self):
        return self[0]

    @property
    def offsets(self):
        """The expressions of the formula's ``offset(...)`` terms."""
        return self._offsets

    @property
    def X(self):
        return self[1]

    @property
    def y(self):
        return self[2]

    def design(self, data):
        """X for new rows, coded as the formula coded its data.

        The same columns, categorical levels and transforms as the X of
        :func:`from_formula`; a categorical level that data did not have is
        an error.

        Parameters
        ----------
        data : DataFrame
            Rows with the formula's covariates and grouping column (both
            columns for ``(1 | a/b)``); the response may be absent.

        Returns
        -------
        DataFrame
            The group column (or columns) and the fixed-effect columns (and
            the offset's column, for a formula with ``offset(...)``).

        Examples
        --------
        >>> import pandas as pd
        >>> from skre import from_formula
        >>> d = pd.DataFrame({"g": [1, 1, 2, 2, 3, 3], "x": [0, 1, 0, 1, 0, 1],
        ...                   "y": [0, 1, 1, 1, 0, 0]})
        >>> model = from_formula("y ~ x + (1 | g)", d)
        >>> model.design(pd.DataFrame({"g": [4], "x": [1.0]}))
           g    x
        0  4  1.0
        """
        X, _ = _design(self._spec, data, self._group, self._pairs)
        if self._offsets:
            X[_offset_name(self._offsets)] = _offset_values(self._offsets, data)
        return X


def from_formula(formula, data, **params):
    """An lme4 formula and a DataFrame to the estimator, X and y it means.

    ``"cbind(m, n - m) ~ treat * time + (1 | patient)"`` (counts of successes
    and failures) or ``"y ~ treat * time + (1 | patient)"`` (binary rows)
    becomes ``MultilevelBinomial(group="patient", **params)``, X with the
    ``patient`` column and the fixed-effect columns that formulaic builds from
    ``treat * time``, and y (binary labels or ``[successes, trials]``). The
    fixed part takes everything formulaic does: interactions ``a:b`` and
    ``a * b``, categorical columns (treatment coding, named like
    ``treat[T.b]``), ``C(x)``, transforms such as ``np.log(x)``.

    Nested groups, ``(1 | hospital/ward)`` (or lme4's long spelling of it,
    ``(1 | hospital) + (1 | hospital:ward)``: a ward label names a group only
    within its hospital), become ``MultilevelBinomial(group=["hospital",
    "ward"])`` with both columns at the front of X; the term takes the random
    intercepts only, not slopes. ``(1 | hospital:ward)`` alone is one grouping
    factor, a group for each (hospital, ward) pair that occurs (``a:b:c``
    for three columns): X's first column ``"hospital:ward"`` holds the labels
    ``"<hospital>:<ward>"`` (as R labels an interaction) and
    ``group="hospital:ward"``. Pairs are compared by value, as one group
    column's labels are (2 and 2.0 are one label); :meth:`FormulaModel.design`
    gives new rows of a seen pair that pair's label.

    A random term with slopes, ``(1 + time | patient)``, sets
    ``random_slopes=["time"]`` (the slope columns must be fixed effects too,
    as in lme4's ``time + (1 + time | patient)``); ``(1 + time || patient)``
    also sets ``covariance="diagonal"``. ``offset(expr)`` in the fixed part
    (an expression of the data's columns, as ``I(expr)`` takes it:
    ``offset(np.log(exposure))``; different ones add up and a repeated
    one counts once, as in R) becomes a column
    ``"offset(expr)"`` of X and ``offset=`` that column.

    Parameters
    ----------
    formula : str
        ``response ~ fixed part + (1 | group)`` (or ``(1 + x | group)``,
        ``(1 + x || group)``, ``(1 | outer/inner)``, ``(1 | a:b)``). The
        response is a column of 0/1 (or True/False) labels, or
        ``cbind(successes, failures)`` with an expression of the data's
        columns for each (``cbind(m, n - m)``).
    data : DataFrame
        The columns the formula names.
    **params
        Further parameters of :class:`MultilevelBinomial` (``n_quad``,
        ``tau_prior``, ...).

    Returns
    -------
    FormulaModel
        ``(estimator, X, y)``; its :meth:`FormulaModel.design` codes new data
        the same way.

    Raises
    ------
    ValueError
        For a formula without ``~`` or without a ``(1 | group)`` term, a
        fixed part without an intercept (``0 + x``, ``x - 1``: skre always
        fits one), a missing value in a column the formula uses (nothing is
        dropped silently), a response that is not binary or whose counts are
        negative, a column name that a group and a fixed effect share,
        ``(1 | a:a)``, or ``(1 | a:b)`` labels that two different pairs would
        share (a label containing ``:``, or ``"2"`` and ``2``; also for new
        rows in :meth:`FormulaModel.design`).
    NotImplementedError
        For crossed ``(1 | a) + (1 | b)`` groups, random
        slopes of nested groups (``(1 + x | a/b)``), three or more levels
        (``(1 | a/b/c)``), a random term without the intercept
        (``(0 + x | g)``) or with more than two slopes: skre fits one
        grouping factor with a random intercept and up to two random slopes,
        or two nested ones with a random intercept each.

    See Also
    --------
    MultilevelBinomial : The estimator it returns.

    Examples
    --------
    >>> import numpy as np
    >>> from skre import from_formula
    >>> from skre.datasets import load_rats
    >>> X, y = load_rats(return_X_y=True)
    >>> d = X.assign(m=y["m"], n=y["n"])
    >>> est, X, y = from_formula("cbind(m, n - m) ~ 1 + (1 | batch)", d)
    >>> est
    MultilevelBinomial(group='batch')
    >>> round(est.fit(X, y).tau_, 6)
    0.674123
    """
    if not isinstance(formula, str):
        raise TypeError(f"formula must be a string; got {type(formula).__name__}.")
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame; got {type(data).__name__}.")
    if formula.count("~") != 1:
        raise ValueError(
            f"formula needs one '~' between the response and the terms; got "
            f"{formula!r}."
        )
    if "offset" in params:
        raise ValueError(
            "from_formula takes the offset from the formula: write "
            "offset(column) among the fixed terms instead of offset=."
        )
    lhs, rhs = formula.split("~")
    group, fixed, inside, bar = _random_part(r_powers(rhs), formula)
    groups = group if isinstance(group, list) else [group]
    _check_columns(data, _sources(groups), "grouping column")
    y = _response(lhs, data)
    _check_no_missing(data, _sources(groups))
    fixed, offsets = _offset_terms(fixed)
    offsets = list(dict.fromkeys(offsets))  # R counts a repeated term once
    spec = _fixed_spec(fixed, data, formula)
    X, pairs = _design(spec, data, group)
    slopes = _slope_columns(inside, data, list(X.columns[len(groups) :]), formula)
    if slopes:
        params = {"random_slopes": slopes, **params}
        if bar == "||":
            params = {"covariance": "diagonal", **params}
    if offsets:
        name = _offset_name(offsets)
        X[name] = _offset_values(offsets, data)
        params = {"offset": name, **params}
    return FormulaModel(
        MultilevelBinomial(group=group, **params),
        X,
        y,
        formula,
        spec,
        group,
        offsets,
        pairs,
    )


def _offset_terms(fixed):
    """The fixed part without its ``offset(...)`` terms, and their inner
    expressions (R adds several offsets up)."""
    offsets, out, i = [], [], 0
    for start, inner, end in _calls(fixed, r"\boffset\s*\("):
        offsets.append(fixed[inner : end - 1].strip())
        out.append(fixed[i:start])
        i = end
    out.append(fixed[i:])
    rest = "".join(out)
    rest = re.sub(r"\+\s*(?=\+|$)", "", rest.strip())  # dangling '+'
    rest = re.sub(r"^\s*\+", "", rest).strip()
    return rest or "1", offsets


def _calls(text, opening):
    """``(start, inner, end)`` of each call whose opening (a regex ending in
    its ``(``) matches in ``text``, not nested in an earlier one: ``inner``
    is where its arguments begin, ``end`` just past its closing ``)``."""
    i = 0
    for match in re.finditer(opening, text):
        if match.start() < i:
            continue
        depth, j = 1, match.end()
        while j < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[j], 0)
            j += 1
        yield match.start(), match.end(), j
        i = j


def _offset_name(offsets):
    return "offset(" + " + ".join(offsets) + ")"


def _offset_values(offsets, data):
    """The sum of the ``offset(...)`` expressions on ``data`` (formulaic
    evaluates each, as ``I(...)``: numpy's functions as ``np.log``)."""
    from formulaic import model_matrix
    from formulaic.errors import FormulaicError

    total = np.zeros(len(data))
    for expr in offsets:
        try:
            matrix = model_matrix(f"0 + I({r_powers(expr)})", data, na_action="raise")
        except (FormulaicError, ValueError) as exc:
            raise ValueError(
                f"cannot evaluate offset({expr}) on the data: {exc}"
            ) from None
        values = np.asarray(matrix, dtype=float)
        if values.shape != (len(data), 1) or not np.all(np.isfinite(values)):
            raise ValueError(
                f"offset({expr}) must be one finite number per row (it has "
                "missing or infinite values: nothing is dropped silently)."
            )
        total += values[:, 0]
    return total


def _slope_columns(inside, data, fixed_columns, formula):
    """The fixed-effect columns that the random term's ``inside`` names (its
    own columns built by formulaic, the intercept apart)."""
    if inside.replace(" ", "") == "1":
        return []
    from formulaic import model_matrix
    from formulaic.errors import FormulaicError

    try:
        matrix = model_matrix(inside, data, na_action="raise")
    except (FormulaicError, ValueError) as exc:
        raise ValueError(f"the random-effect term ({inside} | ...): {exc}") from None
    if "Intercept" not in matrix.columns:
        raise NotImplementedError(
            f"{_NOT_YET}; ({inside} | ...) drops the random intercept, which "
            "skre always has."
        )
    slopes = [str(c) for c in matrix.columns if c != "Intercept"]
    missing = [c for c in slopes if c not in fixed_columns]
    if missing:
        raise ValueError(
            f"the random slope of {missing[0]!r} in {formula!r} needs the same "
            "column among the fixed effects (as in lme4's x + (1 + x | g)): "
            "add it to the fixed part."
        )
    if len(slopes) > 2:
        raise NotImplementedError(
            f"{_NOT_YET}; ({inside} | ...) asks for {len(slopes)} random slopes."
        )
    return slopes


def _random_part(rhs, formula):
    """The grouping column of the one ``(1 | g)`` term (``[a, b]`` for
    nested ``(1 | a/b)``), the fixed part, and the term's inside and bar."""
    terms = _RANDOM.findall(rhs)
    if not terms and "|" in rhs:
        # a bar inside a term the pattern does not read: a call in the
        # grouping part, interaction(a, b), say
        hint = " (interaction(a, b) is a:b here)" if "interaction(" in rhs else ""
        raise NotImplementedError(
            f"{_NOT_YET}; formula {formula!r} has a random-effect term skre does "
            "not read: it reads (1 | g), (1 + x | g), (1 + x || g), (1 | a/b) "
            f"and (1 | a:b), each g, a and b a column of the data{hint}."
        )
    if not terms:
        raise ValueError(
            f"formula {formula!r} has no random-effect term: add (1 | group) "
            "for the grouping column (for no grouping use scikit-learn's "
            "LogisticRegression or skre's CompletePoolingBinomial)."
        )
    if len(terms) > 1:
        nested = _spelled_out_nesting(terms)
        if nested is None:
            raise NotImplementedError(
                f"{_NOT_YET}; formula {formula!r} has {len(terms)} random-effect "
                "terms (crossed groups)."
            )
        # lme4's long spelling of (1 | a/b): the same model
        terms = [("1", "|", "/".join(nested))]
    inside, bar, group = (part.strip() for part in terms[0])
    levels = [level.strip() for level in group.split("/")]
    if len(levels) == 1 and ":" in group:
        return _pair_groups(group), _fixed_part(rhs), inside, bar
    if not all(re.fullmatch(_NAME, level) for level in levels):
        raise NotImplementedError(
            f"{_NOT_YET}; (1 | {group}) is not one column of the data"
            + (" or a/b of two columns." if len(levels) > 1 else " or a:b of columns.")
        )
    if len(levels) > 2:
        raise NotImplementedError(
            f"{_NOT_YET}; (1 | {group}) nests {len(levels)} levels, skre fits two, "
            "(1 | outer/inner)."
        )
    if len(levels) == 2:
        if levels[0] == levels[1]:
            raise ValueError(
                f"(1 | {group}) nests the column {levels[0]!r} in itself: "
                "(1 | outer/inner) takes two different columns."
            )
        if inside.replace(" ", "") != "1":
            raise NotImplementedError(
                f"{_NOT_YET}; ({inside} | {group}) asks for random slopes of "
                f"nested groups: skre fits their random intercepts only, "
                f"(1 | {levels[0]}/{levels[1]})."
            )
        group = levels
    return group, _fixed_part(rhs), inside, bar


def _fixed_part(rhs):
    """The right-hand side without its random-effect terms."""
    fixed = _RANDOM.sub("", rhs)
    fixed = re.sub(r"\+\s*(?=\+|$)", "", fixed.strip())  # dangling '+'
    fixed = re.sub(r"^\s*\+", "", fixed).strip()
    return fixed or "1"


def _pair_groups(group):
    """``a:b`` (lme4's interaction of grouping columns: one group for each
    combination of their labels that occurs) as the name of the group column
    that :func:`_group_columns` builds."""
    parts = [part.strip() for part in group.split(":")]
    if not all(re.fullmatch(_NAME, part) for part in parts):
        raise NotImplementedError(
            f"{_NOT_YET}; (1 | {group}) is not one column of the data or a:b of "
            "columns."
        )
    if len(set(parts)) < len(parts):
        raise ValueError(
            f"(1 | {group}) crosses a column with itself: a:b takes different columns."
        )
    return ":".join(parts)


def _spelled_out_nesting(terms):
    """``(a, b)`` when the random terms are lme4's ``(1 | a) + (1 | a:b)``
    (in either order, ``b:a`` too), else None."""
    if len(terms) != 2 or any(t[0].replace(" ", "") != "1" for t in terms):
        return None
    groups = [[part.strip() for part in t[2].split(":")] for t in terms]
    for one, two in (groups, groups[::-1]):
        if (
            len(one) == 1
            and len(two) == 2
            and one[0] in two
            and two[0] != two[1]
            and all(re.fullmatch(_NAME, name) for name in two)
        ):
            return one[0], two[1] if two[0] == one[0] else two[0]
    return None


def _check_columns(data, names, what):
    missing = [name for name in names if name not in data.columns]
    if missing:
        raise ValueError(
            f"the {what} {missing[0]!r} is not a column of data; its columns "
            f"are {list(map(str, data.columns))}."
        )


def _evaluate(expr, data, side):
    try:
        values = data.eval(expr.strip(), engine="python")
    except Exception as exc:  # pandas raises many kinds for a bad expression
        raise ValueError(
            f"cannot evaluate the response's {side} {expr.strip()!r} on the data: {exc}"
        ) from None
    values = np.asarray(values, dtype=float)
    if values.shape != (len(data),):
        raise ValueError(
            f"the response's {side} {expr.strip()!r} is not one value per row."
        )
    return values


def _response(lhs, data):
    """Binary labels, or ``[successes, trials]`` from ``cbind(a, b)``."""
    match = _CBIND.match(lhs)
    if match is None:
        name = lhs.strip()
        _check_columns(data, [name], "response")
        y = data[name]
        if y.isna().any():
            raise ValueError(
                f"the response {name!r} has missing values; drop or fill them "
                "first: nothing is dropped silently."
            )
        values = y.to_numpy()
        if values.dtype == bool:
            values = values.astype(int)
        ok = np.isin(values, [0, 1]).all() if values.dtype.kind in "biuf" else False
        if not ok:
            raise ValueError(
                f"the response {name!r} must hold 0/1 (or True/False) labels; "
                "for counts write cbind(successes, failures)."
            )
        return np.asarray(values, dtype=int)
    parts = _split_args(match.group(1))
    if len(parts) != 2:
        raise ValueError(
            f"cbind() takes two expressions, successes and failures; got "
            f"{lhs.strip()!r}."
        )
    m = _evaluate(parts[0], data, "successes")
    f = _evaluate(parts[1], data, "failures")
    for side, values in (("successes", m), ("failures", f)):
        if np.isnan(values).any():
            raise ValueError(
                f"the response's {side} have missing values (row "
                f"{int(np.flatnonzero(np.isnan(values))[0])}); nothing is "
                "dropped silently."
            )
        if (values < 0).any():
            raise ValueError(
                f"the response's {side} are negative at row "
                f"{int(np.flatnonzero(values < 0)[0])}."
            )
    return np.column_stack([m, m + f])


def _split_args(text):
    """Split ``a, b`` at top-level commas."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch in "(["
        depth -= ch in ")]"
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def r_powers(text):
    """R's ``^`` inside ``I(...)`` as Python's ``**``: formulaic evaluates
    ``I()`` as Python, where ``^`` is bitwise XOR (``I(x^2)`` on integers would
    silently be ``x XOR 2``). Outside ``I()``, ``^`` is the formula's own
    interaction power in both languages and stays."""
    out, i = [], 0
    for _, inner, end in _calls(text, r"\bI\("):
        out.append(text[i:inner])
        out.append(text[inner:end].replace("^", "**"))
        i = end
    out.append(text[i:])
    return "".join(out)


def _fixed_spec(fixed, data, formula):
    """formulaic's model spec of the fixed part (an intercept required)."""
    try:
        from formulaic import model_matrix
    except ImportError:  # an optional extra
        raise ImportError(
            "from_formula builds the fixed part with formulaic: "
            "pip install 'skre[formula]' (or pip install formulaic)."
        ) from None

    from formulaic.errors import FormulaicError

    try:
        matrix = model_matrix(fixed, data, na_action="raise")
    except (FormulaicError, ValueError) as exc:
        raise ValueError(
            f"the fixed part {fixed!r} of {formula!r}: {exc} (nothing is "
            "dropped silently: drop or fill the missing values first)."
        ) from None
    if "Intercept" not in matrix.columns:
        raise ValueError(
            f"the fixed part {fixed!r} has no intercept: skre always fits one "
            "(the mean of the group logits); remove '0 +' or '- 1'."
        )
    return matrix.model_spec


def _design(spec, data, group, pairs=None):
    """X of ``data`` (the group columns, then the fixed part's) and the
    pairs of its ``a:b`` groups (see :func:`_group_columns`)."""
    groups = group if isinstance(group, list) else [group]
    _check_columns(data, _sources(groups), "grouping column")
    from formulaic.errors import FormulaicError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            matrix = spec.get_model_matrix(data, na_action="raise")
        except (FormulaicError, ValueError) as exc:
            raise ValueError(f"cannot build the fixed-effect columns: {exc}") from None
    unseen = [w for w in caught if "categories outside" in str(w.message)]
    if unseen:  # formulaic would code them as the reference level
        raise ValueError(
            f"{unseen[0].message} skre refuses them rather than code them as the "
            "reference level: a categorical covariate's levels must be among "
            "those of the data the formula was first applied to."
        )
    fixed = pd.DataFrame(matrix).drop(columns="Intercept")
    for name in groups:
        if name in fixed.columns:
            raise ValueError(
                f"{name!r} is both {'the' if len(groups) == 1 else 'a'} grouping "
                "column and a fixed-effect column."
            )
    frame, found = _group_columns(data, groups, pairs)
    X = pd.concat([frame, fixed.reset_index(drop=True)], axis=1)
    return X.astype({name: float for name in fixed.columns}), found


def _sources(groups):
    """The data's columns behind the group columns (``a:b`` is built from
    ``a`` and ``b``)."""
    return [part for name in groups for part in name.split(":")]


def _group_columns(data, groups, pairs=None):
    """The group columns of X: the data's, and for ``a:b`` one label per
    combination, ``"<a>:<b>"`` (as R labels an interaction). ``pairs``: the
    labels of the combinations the formula's own data had (``{name: (their
    MultiIndex, their labels)}``), which rows of new data with the same
    values (by value, as for one group column: 2 and 2.0 are one label) get;
    a new combination whose label a different one already has is an error.
    Returns the columns and this data's pairs (``{name: (MultiIndex,
    labels)}``)."""
    out, found = {}, {}
    for name in groups:
        parts = name.split(":")
        if len(parts) == 1:
            out[name] = data[name].reset_index(drop=True)
            continue
        _check_no_missing(data, parts)
        rows = pd.MultiIndex.from_frame(data[parts])
        known, known_labels = pairs[name] if pairs else (rows[:0], np.array([], object))
        unique = rows.unique()
        at = known.get_indexer(unique)
        labels = np.array([":".join(map(str, pair)) for pair in unique], dtype=object)
        labels[at >= 0] = known_labels[at[at >= 0]]
        fresh = labels[at < 0]
        clash = set(fresh) & set(known_labels)
        if clash or len(set(fresh)) < len(fresh):
            label = sorted(clash)[0] if clash else pd.Series(fresh).mode()[0]
            raise ValueError(
                f"the labels of {name} are ambiguous: two different combinations "
                f"of {parts} give the label {label!r} (a label contains ':', or "
                "the same digits in another type: '2' and 2); build the group "
                "column yourself and write (1 | that column)."
            )
        out[name] = pd.Series(labels[unique.get_indexer(rows)], name=name)
        found[name] = (unique, labels)
    return pd.concat(out.values(), axis=1), found


def _check_no_missing(data, names):
    """Refuse a missing label in the grouping columns ``names``."""
    for name in names:
        missing = data[name].isna().to_numpy()
        if missing.any():
            raise ValueError(
                f"the grouping column {name!r} has missing values (row "
                f"{int(np.flatnonzero(missing)[0])}); drop or fill them first: "
                "nothing is dropped silently."
            )
