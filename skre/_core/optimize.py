"""Smooth unconstrained minimisation that reports honestly.

BFGS from a start whose inverse Hessian is measured (finite differences of the
analytic gradient), then Newton steps on a finite-difference Hessian until the
gradient vanishes to working precision. An objective that supplies its own
Hessian gets Newton steps on it first, while they behave as Newton steps near
a minimum do (see ``_newton``). ``converged`` is decided on the final
gradient (or the Newton step it implies), not on how the iteration stopped: a
line search often runs out of decrease at an optimum, when rounding of the
objective dominates.
"""

from dataclasses import dataclass

import numpy as np


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
    stopped: bool = False  # ended by ``stop`` (not converged)


#: the largest Newton step with which a gradient below ``gtol`` counts as converged
PLATEAU_STEP = 1e-6
#: the largest change of any coordinate a line search tries first (log tau and
#: standardized coefficients: 5 is a factor of 150 in tau)
MAX_STEP = 5.0
#: the longest Newton step (any coordinate) taken on the objective's own
#: Hessian; a longer one hands over to BFGS (a factor of e in tau)
NEWTON_MAX_STEP = 1.0


def fd_hessian(fun_grad, x, step=1e-5):
    """Symmetrised central-difference Hessian of an analytic gradient."""
    k = len(x)
    H = np.empty((k, k))
    for j in range(k):
        e = np.zeros(k)
        e[j] = step * max(1.0, abs(x[j]))
        H[:, j] = (fun_grad(x + e)[1] - fun_grad(x - e)[1]) / (2 * e[j])
    return 0.5 * (H + H.T)


def _inverse_if_positive(H, floor=1e-8):
    """The inverse of ``H`` if every eigenvalue is at least ``floor`` times the
    largest (and 1e-8 at least), else None."""
    if not H.size:
        return None
    vals, vecs = np.linalg.eigh(H)  # (ascending)
    if vals[0] >= floor * max(1.0, abs(vals[0]), abs(vals[-1])):
        inv = (vecs / vals) @ vecs.T
        return 0.5 * (inv + inv.T)
    return None


def _positive_definite(H, floor=1e-8):
    """Inverse of ``H`` with its eigenvalues made positive (``|value|``, at
    least ``floor`` of the largest). A coordinate whose row and column are
    exactly 0 (an aliased covariate) gets a diagonal entry and no coupling, so
    that steps never move it (``eigh`` would mix it with the others by
    rounding, amplified by ``1 / floor``)."""
    H = np.asarray(H, dtype=float)
    inv = _inverse_if_positive(H, floor)
    if inv is not None:
        return inv
    top = max(1.0, float(np.max(np.abs(H)))) if H.size else 1.0
    zero = np.all(H == 0.0, axis=0) & np.all(H == 0.0, axis=1)
    inv = np.zeros_like(H)
    inv[zero, zero] = 1.0 / (floor * top)
    keep = ~zero
    if keep.any():
        vals, vecs = np.linalg.eigh(H[np.ix_(keep, keep)])
        vals = np.maximum(np.abs(vals), floor * max(1.0, np.max(np.abs(vals))))
        inv[np.ix_(keep, keep)] = (vecs / vals) @ vecs.T
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


def _wolfe_step(counted, x, f, slope, d, c1=1e-4, c2=0.9, max_eval=20):
    """A step length ``t`` along ``d`` meeting the strong Wolfe conditions.

    Extrapolates (doubling) while the slope stays steep, so that a flat start
    (the log tau gradient vanishes as tau -> 0) cannot stop the search short;
    then zooms by bisection. Returns ``(t, f, g)`` or None when no step
    decreases the objective beyond its rounding.
    """
    slack = 1e-13 * max(1.0, abs(f))  # the objective's rounding
    lo, f_lo, hi = 0.0, f, None
    # the first trial moves no coordinate by more than MAX_STEP: a gradient
    # dominated by a sharp prior (HalfNormal(1e-8) on tau) implies absurd steps
    t, best = min(1.0, MAX_STEP / max(float(np.max(np.abs(d))), 1e-300)), None
    for _ in range(max_eval):
        f_t, g_t = counted(x + t * d)
        if not np.isfinite(f_t) or f_t > min(f + c1 * t * slope, f_lo) + slack:
            hi = t  # too far: the minimum along d lies before t
        else:
            best = (t, f_t, g_t)
            slope_t = float(g_t @ d)
            if abs(slope_t) <= -c2 * slope:
                return best
            if slope_t > 0:
                hi = t
            else:
                lo, f_lo = t, f_t
        if hi is None:
            t *= 2.0
            if t > 1e6:
                break
        else:
            t = 0.5 * (lo + hi)
            if hi - lo <= 1e-10 * hi:
                break
    return best


def _newton(counted, hessian, x, f, g, max_iter, done, last_step=0.0, stop=None):
    """Newton steps on the objective's own Hessian (``hessian(x)``, valid right
    after ``counted(x)``) from ``x`` with value ``f`` and gradient ``g``, each
    with a backtracking line search (unit step first).

    Returns ``(x, f, g, hess_inv, n_iter, finished)``. ``finished`` is None
    when BFGS should take over from there: no Hessian, or one that is not
    finite or not positive definite (far from the minimum, where BFGS's
    start curvature and line search are the safer guide); no decrease along
    the Newton direction; steps that stop shrinking quadratically (as on the
    plateau towards tau = 0, where each Newton step in log tau is about -1/2
    and BFGS's line search extrapolates); or a Newton step longer than
    :data:`NEWTON_MAX_STEP` (a leap that far on a
    quadratic model lands anywhere: on a multimodal posterior, in another
    mode than BFGS's careful start finds). Handed over before any step, BFGS
    starts from ``hess_inv0`` as if there had been no Hessian.
    It is ``"done"`` when ``done`` holds at ``x``, and ``"blind"`` when the
    last step was taken without evaluating at its end (``f`` and ``g`` are
    then from the point before): with ``last_step > 0``, a step below
    ``last_step`` that follows a full step it is below 10 times the square of
    (Newton converging quadratically) leaves an error of the order of its own
    square, which no evaluation there would improve on. It is ``"stopped"``
    when ``stop(x)`` holds at a new point.
    """
    n_iter, last_size, slow, full = 0, np.inf, 0, False
    hess_inv = None
    while n_iter < max_iter:
        H = hessian(x)
        if H is None or not np.all(np.isfinite(H)):
            return x, f, g, hess_inv, n_iter, None
        positive = _inverse_if_positive(H)
        if positive is None:  # not a neighbourhood of a minimum: BFGS's job
            return x, f, g, hess_inv, n_iter, None
        if done(g, positive, f):
            return x, f, g, positive, n_iter, "done"
        d = -positive @ g
        size = float(np.max(np.abs(d)))
        if size > NEWTON_MAX_STEP:  # the quadratic model is only local
            return x, f, g, hess_inv, n_iter, None
        hess_inv = positive
        if full and size <= last_step and size <= 10.0 * last_size**2:
            return x + d, f, g, hess_inv, n_iter + 1, "blind"
        slow = slow + 1 if size > 0.25 * last_size else 0
        if slow >= 2 or not (np.isfinite(f) and np.all(np.isfinite(g))):
            return x, f, g, hess_inv, n_iter, None
        slope = float(g @ d)
        slack = 1e-13 * max(1.0, abs(f))  # the objective's rounding
        t = 1.0
        for _ in range(4):
            f_t, g_t = counted(x + t * d)
            if np.isfinite(f_t) and f_t <= f + 1e-4 * t * slope + slack:
                break
            t *= 0.5
        else:
            return x, f, g, hess_inv, n_iter, None
        x, f, g = x + t * d, float(f_t), np.asarray(g_t)
        last_size, full = t * size, t == 1.0
        n_iter += 1
        if stop is not None and stop(x):
            return x, f, g, hess_inv, n_iter, "stopped"
    return x, f, g, hess_inv, n_iter, None


def _bfgs(counted, x, hess_inv0, max_iter, done, start=None, stop=None):
    """BFGS from ``hess_inv0`` with a strong-Wolfe line search (unit step first),
    no update from a step without positive curvature. A few lines of numpy in
    place of ``scipy.optimize.minimize``, whose set-up and line search cost
    more than the whole likelihood on small data (about 1.5 ms per fit on
    rats). Stops when ``done(g, H, f)``. ``start``: ``(f, g)`` at ``x`` when
    already evaluated; ``stop``: see :func:`minimize_smooth`. Returns
    ``(x, f, g, H, n_iter, message)``.
    """
    f, g = counted(x) if start is None else start
    H = hess_inv0
    n_iter, message = 0, "converged"
    # the Newton step is judged by the updated H and by the measured start's:
    # on a huge objective the gradient's rounding can corrupt the updates
    while not (done(g, H, f) or done(g, hess_inv0, f)):
        if n_iter >= max_iter:
            return x, f, g, H, n_iter, f"reached max_iter={max_iter}"
        if not (np.isfinite(f) and np.all(np.isfinite(g))):
            return x, f, g, H, n_iter, "non-finite objective or gradient"
        found = None
        for restart in (False, True):
            # a direction whose line search fails (or that is not downhill: the
            # updates took in rounding noise) is retried from hess_inv0
            if restart:
                if H is hess_inv0:
                    break
                H = hess_inv0
            d = -H @ g
            slope = float(g @ d)
            if slope < 0:
                found = _wolfe_step(counted, x, f, slope, d)
                if found is not None:
                    break
        if found is None:
            return x, f, g, H, n_iter, "line search found no decrease (precision loss)"
        t, f_new, g_new = found
        step = t * d
        H = _bfgs_update(H, step, np.asarray(g_new) - g)
        x, f, g = x + step, float(f_new), np.asarray(g_new)
        n_iter += 1
        if stop is not None and stop(x):
            return x, f, g, H, n_iter, "stopped"
    return x, f, g, H, max(n_iter, 1), message


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
    grad_scale=0.0,
    hessian=None,
    last_step=0.0,
    stop=None,
    far_step=None,
):
    """Minimise ``fun_grad(x) -> (f, g)``; see the module docstring.

    Parameters
    ----------
    gtol : the largest absolute gradient component accepted as converged, when
        the Newton step it implies is below :data:`PLATEAU_STEP` as well.
    xtol : or the largest component of the Newton step ``H^-1 g`` (the estimated
        distance to the optimum) accepted as converged. On large data the
        objective's rounding keeps BFGS from reaching ``gtol`` while the
        parameters are already exact to far better than ``xtol``.
    hess_inv0 : initial inverse Hessian; measured at ``x0`` when None. A
        callable returning it is called only if needed (Newton steps on
        ``hessian`` need none).
    polish : at most this many Newton steps after BFGS (within ``max_iter`` in all).
    measure_hessian : Newton steps use a finite-difference Hessian (2 k gradient
        evaluations); otherwise BFGS's own estimate, updated by each step
        (quasi-Newton steps with a unit step length tried first).
    quasi_newton : False skips BFGS and takes only Newton steps with
        ``hess_inv0`` (up to ``max_iter``): for a start that is already close,
        such as the Laplace optimum before adaptive quadrature, where BFGS's line
        search would spend its evaluations on rounding noise.
    grad_scale : the size of the terms the gradient sums (e.g. the trials per
        group of a binomial likelihood): a gradient below ``4 eps grad_scale``
        is rounding and counts as converged. With a billion trials per group
        the gradient cannot get below about 1e-7.
    curvature : with ``quasi_newton=False``, ``hess_inv0 -> inverse Hessian``
        called after the first evaluation (which may have measured it).
    hessian : ``x -> H`` (or None), the objective's Hessian at the point it
        was last evaluated. With ``quasi_newton``, Newton steps on it come
        first (quadratic convergence: on the rats 5 evaluations where BFGS
        takes 7, 4 with ``last_step``), and BFGS takes over where they stall
        (see ``_newton``). They stop on the Newton step alone (below
        ``xtol``): on the exact Hessian it is the distance to the optimum.
    last_step : with ``hessian``, a Newton step below this, in the quadratic
        phase, is taken without evaluating at its end (``_newton``); ``fun``
        and ``grad`` are then those of the point before it, and the caller
        evaluates at ``x`` what it needs there.
    stop : ``x -> bool``, checked at every new point of the Newton and BFGS
        steps: when it holds the run ends there, not converged, with
        ``stopped`` set (the multilevel fit's way out towards tau = 0).
    far_step : with ``quasi_newton=False``, a first Newton step longer than
        this (any coordinate) hands the run to BFGS with that curvature: the
        start is too far for Newton steps on an approximate Hessian (issue
        22: from Laplace's tau = 13 to the quadrature's 1.7 they diverged).
    """
    x0 = np.asarray(x0, dtype=float)
    n_eval = 0

    def counted(x):
        nonlocal n_eval
        n_eval += 1
        return fun_grad(x)

    # the gradient's rounding: 4 eps times the size of the terms it sums
    floor = max(gtol, 4.0 * np.finfo(float).eps * grad_scale)

    def done(g, hess_inv, f):
        # a small gradient alone is not enough: on a plateau (the log tau
        # gradient and curvature vanish together as tau -> 0) it is small far
        # from the optimum, while the step it implies is not
        step = np.abs(hess_inv @ g).max()
        return step <= xtol or (np.abs(g).max() <= floor and step <= PLATEAU_STEP)

    def newton_done(g, hess_inv, f):
        return np.abs(hess_inv @ g).max() <= xtol

    if hess_inv0 is None:
        hess_inv0 = _positive_definite(fd_hessian(counted, x0))
    elif callable(hess_inv0) and (hessian is None or not quasi_newton):
        hess_inv0 = hess_inv0()

    if quasi_newton:
        x, start, n_iter, finished = x0, None, 0, None
        if hessian is not None:
            f, g = start = counted(x0)
            # on the objective's own Hessian the Newton step is the distance
            # to the optimum: it alone decides (a gradient below gtol can
            # still be 1e-7 away where tau is weakly determined)
            x, f, g, hess_inv, n_iter, finished = _newton(
                counted, hessian, x0, f, g, max_iter, newton_done, last_step, stop
            )
            start, message = (f, g), "converged"
            if hess_inv is not None:  # BFGS goes on from the latest Hessian
                hess_inv0 = hess_inv
            elif callable(hess_inv0):  # (no Hessian came: the start's)
                hess_inv0 = hess_inv0()
        if finished is None:
            x, f, g, hess_inv, more, message = _bfgs(
                counted, x, hess_inv0, max_iter - n_iter, done, start, stop
            )
            n_iter += more
            if message.startswith("reached max_iter"):  # Newton's count too
                message = f"reached max_iter={max_iter}"
        elif finished == "stopped":
            message = "stopped"
    else:
        x, (f, g) = x0, counted(x0)
        hess_inv, n_iter, message = hess_inv0, 0, "Newton steps"
        judge = None
        if curvature is not None:  # measured along with the first gradient
            hess_inv = curvature(hess_inv0)
        first = np.abs(hess_inv @ g).max() if np.all(np.isfinite(g)) else np.inf
        if far_step is not None and first > far_step:
            # far from the optimum (a Laplace start far from the quadrature's
            # optimum): unit Newton steps on an approximate curvature leap
            # or crawl there; BFGS's line search takes the way
            x, f, g, hess_inv, n_iter, message = _bfgs(
                counted, x, hess_inv0, max_iter, done, (f, g)
            )
            if curvature is not None:
                # the curvature measured at each new point judges the step
                # left too: BFGS's updates can underestimate it (a slope of
                # 0.007 stopped 1e-8 short), while the outer products can
                # overestimate it along a flat ridge (one binary row a group)
                judge = curvature
        else:
            polish = max_iter
    hess_inv = 0.5 * (hess_inv + hess_inv.T)  # scipy wants it exactly symmetric

    blind = quasi_newton and finished == "blind"
    if blind:  # converged by the quadratic phase's own error bound
        message = "converged (the last Newton step not evaluated)"
    stopped = quasi_newton and message == "stopped"
    if stopped:
        return OptimResult(x, f, g, n_iter, n_eval, False, message, hess_inv, True)
    budget = min(polish, max_iter - n_iter) if np.all(np.isfinite(g)) else 0
    judge = judge if not quasi_newton else None
    for _ in range(0 if blind else max(budget, 0)):
        second = None if judge is None else judge(hess_inv)
        by_first = done(g, hess_inv, f)
        if by_first and (second is None or done(g, second, f)):
            break
        if measure_hessian:
            H = fd_hessian(counted, x)
            if not np.all(np.isfinite(H)):  # a neighbour beyond MAX_LOG_TAU
                break
            hess_inv = _positive_definite(H)
        step = -(second if by_first and second is not None else hess_inv) @ g
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
    converged = blind or bool(np.all(np.isfinite(g)) and done(g, hess_inv, f))
    if not converged:
        message = f"{message} (largest gradient component {np.max(np.abs(g)):.3g})"
    return OptimResult(x, f, g, n_iter, n_eval, converged, message, hess_inv)
