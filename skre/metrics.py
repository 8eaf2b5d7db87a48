"""Scoring that ranks skre's estimators and any other classifier on one scale.

``score`` of a scikit-learn classifier is accuracy, and skre's ``score`` is the
mean log predictive probability per trial with each group's effect integrated
over its fitted distribution. A search that mixes both with default scoring
compares accuracy with log probabilities. :func:`joint_log_score` is one
scorer for all of them.
"""

import numpy as np

from ._validation import check_sample_weight, check_scored_trials, split_y

__all__ = ["JointLogScore", "joint_log_score"]


def _skre_estimator(estimator):
    from ._base import GroupedBinomialMixin

    while getattr(estimator, "steps", None):  # Pipelines, nested ones too
        estimator = estimator.steps[-1][1]
    return isinstance(estimator, GroupedBinomialMixin)


class JointLogScore:
    """Mean log predictive probability per trial, for any fitted classifier.

    ``joint_log_score`` is an instance; call it as
    ``joint_log_score(estimator, X, y, sample_weight=None)``. Use it as
    ``scoring=joint_log_score`` in ``cross_val_score``,
    ``cross_validate`` or ``GridSearchCV`` to compare skre's estimators with
    other classifiers (``LogisticRegression``, gradient boosting, ...) on
    one scale.

    Read more in the :ref:`User Guide <joint_score>`.

    - For a skre estimator (or a Pipeline ending in one) it is its
      ``score``: the group-joint predictive log probability of each group's
      rows, ``log p(y_g | training data)`` summed over groups and divided by
      the trials. Rows of a group seen in fit share that group's effect,
      integrated over its conditional distribution; a new group's rows share
      one draw from the population.
    - For any other classifier, whose rows are independent given ``X``, it
      is ``sum_i w_i log p(y_i | x_i) / sum_i w_i`` from ``predict_proba``:
      the same quantity for a model without group effects (``-log_loss``).

    For groups seen in fit both agree with the per-row log loss up to the
    shared effect. For new groups they differ: the joint score rewards a
    model for what the first rows of a group tell about the next ones (the
    question "how well is a whole new batch predicted"), the per-row
    ``neg_log_loss`` scores each row on its own (the question "how well is
    one new trial predicted"). Use this score to choose between pooling
    strategies on held-out groups, ``neg_log_loss`` (on :func:`~skre.binary_rows`)
    for calibration of single predictions.

    With metadata routing enabled (``sklearn.set_config(
    enable_metadata_routing=True)``), ``joint_log_score.set_score_request(
    sample_weight=True)`` returns a scorer that receives the test rows'
    ``sample_weight`` (without it the score is unweighted, as scikit-learn's
    own scorers are).

    Parameters
    ----------
    sample_weight_request : bool, str or None, default=None
        What :meth:`JointLogScore.set_score_request` set: whether the scorer asks for
        ``sample_weight`` under metadata routing.

    See Also
    --------
    skre.binary_rows : Counts as weighted binary rows, for scorers that read y.
    sklearn.metrics.log_loss : The per-row score of single predictions.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import GroupKFold, cross_val_score
    >>> from skre import MultilevelBinomial, binary_rows
    >>> from skre.datasets import load_rats
    >>> from skre.metrics import joint_log_score
    >>> X, y = load_rats(return_X_y=True)
    >>> Xb, yb, wb = binary_rows(X, y)
    >>> m = MultilevelBinomial(group="batch").fit(Xb, yb, sample_weight=wb)
    >>> round(joint_log_score(m, Xb, yb, sample_weight=wb), 4) == round(
    ...     m.score(Xb, yb, sample_weight=wb), 4)
    True
    >>> from sklearn.metrics import log_loss
    >>> lr = LogisticRegression().fit(Xb, yb, sample_weight=wb)
    >>> ll = -log_loss(yb, lr.predict_proba(Xb), sample_weight=wb)
    >>> bool(abs(joint_log_score(lr, Xb, yb, sample_weight=wb) - ll) < 1e-12)
    True
    """

    def __init__(self, sample_weight_request=None):
        self.sample_weight_request = sample_weight_request

    def __repr__(self):
        if self.sample_weight_request is None:
            return "joint_log_score"
        request = self.sample_weight_request
        return f"joint_log_score.set_score_request(sample_weight={request!r})"

    def set_score_request(self, *, sample_weight=None):
        """A new scorer that asks for ``sample_weight`` under metadata routing.

        Parameters
        ----------
        sample_weight : bool, str or None, default=None
            As scikit-learn's ``set_score_request``: True to receive the
            weights, False not to, a string to receive them under an alias.

        Returns
        -------
        JointLogScore
            A new scorer; ``joint_log_score`` itself is not changed.
        """
        return type(self)(sample_weight)

    def get_metadata_routing(self):
        """What this scorer requests, for scikit-learn's metadata routing.

        Returns
        -------
        MetadataRequest
            ``score`` requests ``sample_weight`` as set by
            :meth:`set_score_request`.
        """
        from sklearn.utils.metadata_routing import MetadataRequest

        request = MetadataRequest(owner=self)
        request.score.add_request(
            param="sample_weight", alias=self.sample_weight_request
        )
        return request

    def __call__(self, estimator, X, y, sample_weight=None):
        """Score a fitted classifier on ``(X, y)``.

        Parameters
        ----------
        estimator : fitted classifier
            A skre estimator, a Pipeline ending in one, or any classifier
            with ``predict_proba`` and ``classes_``.
        X : array-like or DataFrame of shape (n_samples, n_features)
            As the estimator takes it.
        y : array-like of shape (n_samples,) or (n_samples, 2)
            Binary labels from the estimator's ``classes_``, or
            ``[successes, trials]`` counts: whole, finite, non-negative, with
            successes <= trials, checked as skre's estimators check them.
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights.

        Returns
        -------
        float
            Mean log predictive probability per trial: higher is better, at
            most 0. Another classifier's probabilities are clipped below at
            ``eps`` as ``log_loss`` clips them (so a probability of 0 for an
            observed outcome costs ``log(eps)``, not ``-inf``).

        Raises
        ------
        ValueError
            For ``y`` that skre's ``score`` refuses (labels not in
            ``classes_``, negative or non-integer counts, successes > trials,
            NaN), and when no trial has positive weight (all-zero trials):
            a mean per trial of no trials has no value.
        """
        if _skre_estimator(estimator):
            if sample_weight is None:
                return float(estimator.score(X, y))
            return float(estimator.score(X, y, sample_weight=sample_weight))
        classes = np.asarray(estimator.classes_)
        if len(classes) != 2:
            raise ValueError(
                "joint_log_score is for binary classifiers; the estimator has "
                f"{len(classes)} classes."
            )
        # y checked as skre's estimators check it in score: labels of classes_,
        # or counts with 0 <= successes <= trials, whole and finite
        successes, trials, _, _ = split_y(estimator, y, reset=False)
        w = check_sample_weight(sample_weight, len(trials))
        check_scored_trials(w @ trials)
        proba = np.asarray(estimator.predict_proba(X), dtype=float)
        if len(proba) != len(trials):
            raise ValueError(
                f"X has {len(proba)} rows but y has {len(trials)}; they must match."
            )
        with np.errstate(divide="ignore"):
            log_p = np.log(proba)
        from ._base import point_loglik

        # rows independent given X: the per-trial log loss, clipped as log_loss
        ll = point_loglik(log_p[:, 0], log_p[:, 1], w * successes, w * trials)
        return float(ll / (w @ trials))


#: The scorer instance: ``joint_log_score(estimator, X, y, sample_weight=None)``.
joint_log_score = JointLogScore()
