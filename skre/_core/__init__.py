"""Numerical core of skre: numpy/scipy only, no scikit-learn import.

The core works on *collapsed* data: rows of (group code, covariates, successes,
trials) with frequency weights already folded into the counts. The estimators
(:mod:`skre._pooling`, :mod:`skre._multilevel`) validate user input
(:mod:`skre._validation`), build a design (:mod:`skre._design`) and call into
this package; their fit results (:mod:`skre._fit_result`,
:mod:`skre._multilevel_fit`, :mod:`skre._bayes`) call it again for inference.
"""
