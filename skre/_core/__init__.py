"""Numerical core of skre: numpy/scipy only, no scikit-learn import.

The core works on *collapsed* data: rows of (group code, covariates, successes,
trials) with frequency weights already folded into the counts. Estimators in
:mod:`skre._estimators` validate user input and call into this package.
"""
