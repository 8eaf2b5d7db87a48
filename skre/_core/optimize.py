"""Smooth unconstrained minimisation around ``scipy.optimize`` that reports honestly.

BFGS from a start whose inverse Hessian is measured (finite differences of the
analytic gradient), then Newton steps on a finite-difference Hessian until the
gradient vanishes to working precision. ``converged`` is decided on the final
gradient, not on scipy's message: BFGS often stops with "precision loss" at an
optimum, and sometimes reports success short of one.
"""

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize


@dataclass
class OptimResult:
    x: np.ndarray
    fun: float
    grad: np.ndarray
    n_iter: int
    n_eval: int
    converged: bool
    message: str
    hess_inv: np.ndarray  # BFGS's estimate, or the measured one after polishing


def fd_hessian(fun_grad, x, step=1e-5):
    """Symmetrised central-difference Hessian of an analytic gradient."""
    k = len(x)
    H = np.empty((k, k))
    for j in range(k):
        e = np.zeros(k)
        e[j] = step * max(1.0, abs(x[j]))
        H[:, j] = (fun_grad(x + e)[1] - fun_grad(x - e)[1]) / (2 * e[j])
    return 0.5 * (H + H.T)


def _positive_definite(H, floor=1e-8):
    vals, vecs = np.linalg.eigh(H)
    vals = np.maximum(np.abs(vals), floor * max(1.0, np.max(np.abs(vals))))
    inv = (vecs / vals) @ vecs.T  # inverse of the repaired matrix
    return 0.5 * (inv + inv.T)


def _bfgs_update(hess_inv, s, y):
    """BFGS update of an inverse Hessian with step ``s`` and gradient change
    ``y``; unchanged when the pair carries no positive curvature."""
    sy = float(s @ y)
    if not np.isfinite(sy) or sy <= 1e-12 * np.linalg.norm(s) * np.linalg.norm(y):
        return hess_inv
    rho = 1.0 / sy
    A = np.eye(len(s)) - rho * np.outer(s, y)
    return A @ hess_inv @ A.T + rho * np.outer(s, s)


def minimize_smooth(
    fun_grad,
    x0,
    *,
    gtol=1e-9,
    xtol=1e-8,
    max_iter=200,
    hess_inv0=None,
    polish=3,
    measure_hessian=True,
    quasi_newton=True,
    curvature=None,
):
    """Minimise ``fun_grad(x) -> (f, g)``; see the module docstring.

    Parameters
    ----------
    gtol : the largest absolute gradient component accepted as converged.
    xtol : or the largest component of the Newton step ``H^-1 g`` (the estimated
        distance to the optimum) accepted as converged. On large data the
        objective's rounding keeps BFGS from reaching ``gtol`` while the
        parameters are already exact to far better than ``xtol``.
    hess_inv0 : initial inverse Hessian; measured at ``x0`` when None.
    polish : at most this many Newton steps after BFGS (within ``max_iter`` in all).
    measure_hessian : Newton steps use a finite-difference Hessian (2 k gradient
        evaluations); otherwise BFGS's own estimate, updated by each step
        (quasi-Newton steps with a unit step length tried first).
    quasi_newton : False skips BFGS and takes only Newton steps with
        ``hess_inv0`` (up to ``max_iter``): for a start that is already close,
        such as the Laplace optimum before adaptive quadrature, where BFGS's line
        search would spend its evaluations on rounding noise.
    curvature : with ``quasi_newton=False``, ``hess_inv0 -> inverse Hessian``
        called after the first evaluation (which may have measured it).
    """
    x0 = np.asarray(x0, dtype=float)
    n_eval = 0
    last = {}

    def counted(x):
        nonlocal n_eval
        n_eval += 1
        f, g = fun_grad(x)
        last.update(x=np.array(x), f=f, g=np.asarray(g))
        return f, g

    def done(g, hess_inv):
        return np.max(np.abs(g)) <= gtol or np.max(np.abs(hess_inv @ g)) <= xtol

    if hess_inv0 is None:
        hess_inv0 = _positive_definite(fd_hessian(counted, x0))

    def stop_when_done(intermediate_result):
        # BFGS's line search burns many evaluations once rounding of the objective
        # dominates; stop as soon as the accepted point is converged
        if np.array_equal(intermediate_result.x, last.get("x")) and done(
            last["g"], hess_inv0
        ):
            raise StopIteration

    if quasi_newton:
        res = minimize(
            counted,
            x0,
            jac=True,
            method="BFGS",
            callback=stop_when_done,
            options={"gtol": gtol, "maxiter": max_iter, "hess_inv0": hess_inv0},
        )
        x, f = res.x, float(res.fun)
        g = last["g"] if np.array_equal(x, last["x"]) else counted(x)[1]
        hess_inv = (
            np.asarray(res.hess_inv) if res.get("hess_inv") is not None else hess_inv0
        )
        n_iter, message = max(int(res.nit), 1), str(res.message)
    else:
        x, (f, g) = x0, counted(x0)
        hess_inv, n_iter, message, polish = hess_inv0, 0, "Newton steps", max_iter
        if curvature is not None:  # measured along with the first gradient
            hess_inv = curvature(hess_inv0)
    hess_inv = 0.5 * (hess_inv + hess_inv.T)  # scipy wants it exactly symmetric

    budget = min(polish, max_iter - n_iter) if np.all(np.isfinite(g)) else 0
    for _ in range(max(budget, 0)):
        if done(g, hess_inv):
            break
        if measure_hessian:
            hess_inv = _positive_definite(fd_hessian(counted, x))
        step = -hess_inv @ g
        slack = 1e-13 * max(1.0, abs(f))  # the objective's rounding
        for _ in range(8):
            f_new, g_new = counted(x + step)
            if np.isfinite(f_new) and (
                f_new <= f + slack or np.max(np.abs(g_new)) < np.max(np.abs(g))
            ):
                break
            step *= 0.5
        else:
            break
        if not measure_hessian:
            hess_inv = _bfgs_update(hess_inv, step, np.asarray(g_new) - g)
        x, f, g = x + step, float(f_new), np.asarray(g_new)
        n_iter += 1
        if quasi_newton and not message.startswith("Newton polish"):
            message = "Newton polish after: " + message
    converged = bool(np.all(np.isfinite(g)) and done(g, hess_inv))
    if converged and "StopIteration" in message:
        message = "converged (Newton step below xtol)"
    if not converged:
        message = f"{message} (largest gradient component {np.max(np.abs(g)):.3g})"
    return OptimResult(x, f, g, n_iter, n_eval, converged, message, hess_inv)
