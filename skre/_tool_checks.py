"""Counts ``[successes, trials]`` handed to a fit by a scikit-learn tool that
reads y itself.

skre fits a 2-column y as counts; to scikit-learn it is a multi-output target.
Two tools then go wrong without saying so:

- ``cross_val_predict`` with ``method="predict_proba"`` (or
  ``"predict_log_proba"``, ``"decision_function"``) label-encodes each column of
  y before the fits, so skre is fit on the ranks of the counts (where the
  ranks put successes above trials the fit fails, with rows that mean nothing
  to the user);
- a scorer built on a scikit-learn metric (``scoring="neg_log_loss"``,
  ``"roc_auc"``, ``"accuracy"``, ...) compares the predictions with the
  2-column y; the metric fails on every fold and ``cross_val_score`` reports
  NaN.

The fit cannot tell from y which tool called it, so it looks at its callers:
the frames of ``sklearn.model_selection._validation`` that hold the method or
the scorer. Any other caller is left alone.
"""

import sys

#: cross_val_predict encodes y for these methods
_ENCODED = ("decision_function", "predict_proba", "predict_log_proba")
_VALIDATION = "sklearn.model_selection._validation"
_FIX = (
    "Pass the counts as weighted binary rows, which every scikit-learn tool "
    "takes: Xb, yb, wb = skre.binary_rows(X, y), with wb as sample_weight "
    "(with metadata routing on, to the fit and the scorer; see the user "
    "guide's 'Counts, binary rows and the tools that read y')."
)


def check_counts_caller(est):
    """Raise ``ValueError`` naming :func:`skre.binary_rows` when a fit on
    counts was called by ``cross_val_predict`` with an encoded method, or by
    a cross-validation that scores with a scikit-learn metric."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__") == _VALIDATION:
            name = frame.f_code.co_name
            if name == "_fit_and_predict":
                method = frame.f_locals.get("method")
                if method in _ENCODED:
                    raise ValueError(
                        f"{type(est).__name__} was given y as [successes, trials] "
                        f"counts by cross_val_predict(method={method!r}), which "
                        "label-encodes each column of a 2-column y: the fits would "
                        "see the ranks of the counts, not the counts. " + _FIX
                    )
                return
            if name == "_fit_and_score":
                metric = _metric_reading_y(frame.f_locals.get("scorer"))
                if metric is not None:
                    raise ValueError(
                        f"{type(est).__name__} was given y as [successes, trials] "
                        f"counts, and the scoring uses {metric}, which reads y "
                        "itself and takes 2 columns for a multi-output target: "
                        "every fold would fail to score (NaN). " + _FIX + " Or "
                        "keep the counts and score with the estimator's own "
                        "score (scoring=None) or skre.metrics.joint_log_score."
                    )
                return
        frame = frame.f_back


def _metric_reading_y(scorer):
    """``"sklearn.metrics.log_loss"`` for a scorer built on a scikit-learn
    metric (several: the first), None for anything else (the estimator's own
    score, skre's scorers, the user's own callables)."""
    for one in getattr(scorer, "_scorers", {}).values() or [scorer]:
        func = getattr(one, "_score_func", None)
        module = getattr(func, "__module__", "") or ""
        if module.startswith("sklearn."):
            return f"sklearn.metrics.{func.__name__}"
    return None
