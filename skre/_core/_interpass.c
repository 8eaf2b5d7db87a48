/* The random intercept without covariates (skre._core.quadrature), compiled:
   the conditional modes and the rule's pass over the rows.

   Group g has rows bounds[g] .. bounds[g+1] with logits offset_i + tau u.
   n NULL: binary rows (every n_i 1). The steps are numpy's
   (MarginalLikelihood.modes and _rule with ModePass and NodePass), so the
   two give the same numbers to rounding (tests/test_intercept_kernel.py);
   on small data numpy's calls cost far more than the arithmetic (the rats:
   71 groups, about 20 numpy calls a Newton step of the modes).
   No Python API: loaded with ctypes (skre/_core/kernel.py). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "_vecmath.h"

/* log p and p = expit(e), as nodepass.log_expit_and_expit */
static inline double log_expit(double e, double *p) {
    double log_p = (e < 0.0 ? e : 0.0) - log1p(exp(-fabs(e)));
    *p = exp(log_p);
    return log_p;
}

/* solve_decreasing (roots.py) on f(u) = tau R(u) - u, f' = -tau^2 W(u) - 1
   with R = M - sum n expit, W = sum n p (1 - p), all groups iterated together
   until the largest Newton step is below tol (1 + |u|), or (last_step > 0)
   below last_step (1 + |u|) with every step inside its bracket: that step is
   taken. Then the sums at the modes: W, R0 = sum (m - n p), V = sum w (1 - 2
   p), h0 = the kernel. In: u the starts. Returns 1 when converged, 0 when
   not after max_iter, -1 when the buffers could not be allocated. */
int64_t skre_intercept_modes(int64_t G, const int64_t *bounds,
                             const double *offset, const double *m,
                             const double *n, const double *M,
                             const double *N, double tau, double tol,
                             double last_step, int64_t max_iter, double *u,
                             double *W, double *R0, double *V, double *h0) {
    double *buf = malloc(5 * (size_t)(G > 0 ? G : 1) * sizeof(double));
    if (!buf) return -1;
    double *lo = buf, *hi = buf + G, *moved = buf + 2 * G, *f = buf + 3 * G,
           *step = buf + 4 * G;
    for (int64_t g = 0; g < G; g++) {
        lo[g] = tau * (M[g] - N[g]);
        hi[g] = tau * M[g];
        u[g] = u[g] < lo[g] ? lo[g] : (u[g] > hi[g] ? hi[g] : u[g]);
        moved[g] = fabs(hi[g] - lo[g]);
    }
    int64_t converged = 0;
    for (int64_t it = 0; it < max_iter && !converged; it++) {
        double size = 0.0;
        int nan = 0;
        for (int64_t g = 0; g < G; g++) {
            double xi = tau * u[g], R = 0.0, w = 0.0;
            for (int64_t i = bounds[g]; i < bounds[g + 1]; i++) {
                double P = 1.0 / (1.0 + exp(-(xi + offset[i])));
                if (n) {
                    P *= n[i];
                    R += P;
                    w += P * (1.0 - P / n[i]);
                } else {
                    R += P;
                    w += P * (1.0 - P);
                }
            }
            f[g] = tau * (M[g] - R) - u[g];
            step[g] = -f[g] / (-(tau * tau) * w - 1.0);
            double scaled = fabs(step[g]) / (1.0 + fabs(u[g]));
            if (scaled != scaled) nan = 1;
            else if (scaled > size) size = scaled;
        }
        if (nan) size = NAN;
        if (size <= tol) {
            converged = 1;
            break;
        }
        if (last_step > 0.0 && size <= last_step) {
            int inside = 1;
            for (int64_t g = 0; g < G && inside; g++) {
                double x = u[g] + step[g];
                inside = x >= lo[g] && x <= hi[g];
            }
            if (inside) {
                for (int64_t g = 0; g < G; g++) u[g] += step[g];
                converged = 1;
                break;
            }
        }
        for (int64_t g = 0; g < G; g++) {
            double x = u[g], fg = f[g], sg = step[g];
            if (fg > 0) lo[g] = x;
            if (fg < 0) hi[g] = x;
            double new = x + sg;
            int on_end = (new == lo[g] || new == hi[g]) && new != x;
            int slow = fabs(sg) > 0.5 * moved[g] && fabs(sg) / (1.0 + fabs(x)) > tol;
            int bisect = (new < lo[g] || new > hi[g] || on_end || slow) && fg != 0;
            double next = bisect ? 0.5 * (lo[g] + hi[g]) : (fg == 0 ? x : new);
            moved[g] = fabs(next - x);
            u[g] = next;
        }
    }
    free(buf);
    for (int64_t g = 0; g < G; g++) {
        double xi = tau * u[g], Wg = 0.0, Rg = 0.0, Vg = 0.0, hg = 0.0;
        for (int64_t i = bounds[g]; i < bounds[g + 1]; i++) {
            double e = xi + offset[i], p, ni = n ? n[i] : 1.0;
            double log_p = log_expit(e, &p);
            hg += (n ? log_p * ni : log_p) + (m[i] - ni) * e;
            double np_ = n ? ni * p : p, w = np_ * (1.0 - p);
            Wg += w;
            Rg += m[i] - np_;
            Vg += w * (1.0 - 2.0 * p);
        }
        W[g] = Wg;
        R0[g] = Rg;
        V[g] = Vg;
        h0[g] = hg;
    }
    return converged;
}

/* Group g's part of MarginalLikelihood._score_parts (and, with w, of
   _louis) from its normalised log weights a, node sums P = sum_i n_i p_ik
   and w = sum_i n_i p_ik (1 - p_ik), and the sums at the mode W, R0, V:
   parts[j * G + g] for j = 0..6 is the score in b and in tau, the mode's
   derivatives in b and tau, and Louis' three Hessian terms in (b, tau). */
static void scores(int64_t g, int64_t G, int64_t K, double tau, double u,
                   double s, double W, double R0, double V, double M,
                   const double *t, const double *a, const double *P,
                   const double *w, double *parts) {
    double E_R = 0.0, E_Rt = 0.0, E_t = 0.0, E_t2 = 0.0;
    double D0 = 0.0, D1 = 0.0, D2 = 0.0;
    for (int64_t k = 0; k < K; k++) {
        double pi = exp(a[k]), R = M - P[k], piR = pi * R;
        E_R += piR;
        E_Rt += piR * t[k];
        E_t += pi * t[k];
        E_t2 += pi * (t[k] * t[k]);
        if (w) {
            double d = pi * (R * R - w[k]);
            D0 += d;
            D1 += d * t[k];
            D2 += d * (t[k] * t[k]);
        }
    }
    double E_uR = u * E_R + s * E_Rt;
    double E_hp = tau * E_R - (u + s * E_t);
    double E_hpt = tau * E_Rt - (u * E_t + s * E_t2);
    double s2 = s * s, h3 = -(tau * tau * tau) * V;
    double du_b = -tau * W * s2, du_t = (R0 - tau * u * W) * s2;
    double dlogs_b = 0.5 * s2 * (-(tau * tau) * V + h3 * du_b);
    double dlogs_t = 0.5 * s2 * (-2.0 * tau * W - tau * tau * u * V + h3 * du_t);
    parts[g] = dlogs_b + E_R + E_hp * du_b + E_hpt * s * dlogs_b;
    parts[G + g] = dlogs_t + E_uR + E_hp * du_t + E_hpt * s * dlogs_t;
    parts[2 * G + g] = du_b;
    parts[3 * G + g] = du_t;
    if (w) {
        double L1 = u * D0 + s * D1, L2 = u * u * D0 + s * (2.0 * u * D1 + s * D2);
        parts[4 * G + g] = D0 - E_R * E_R;
        parts[5 * G + g] = L1 - E_R * E_uR;
        parts[6 * G + g] = L2 - E_uR * E_uR;
    }
}

/* The rule at the modes u (K > 1 nodes t, log weights log_omega): each
   group's scale s = (tau^2 W + 1)^-1/2, nodes u + s t, normalised log
   posterior weights logpi and log marginal likelihood logm (kernel only,
   log_sqrt_2pi = log sqrt(2 pi) as the caller computes it); with want >= 1
   also sum_i n_i p_ik per node (np_sum), with want >= 2 sum_i n_i p_ik (1 -
   p_ik) (w_sum) and the score's parts (see scores: each group's sums
   successes Mg and at the mode R0, V are read only then; parts (7, G)).
   logpi, np_sum, w_sum: (G, K). The loops over the nodes are
   vectorised with glibc's vector exp and log (as in _slopepass.c, here
   without errno), so that log(1 + e^-|eta|) is log's, not log1p's (they
   differ by at most 1e-16 of the kernel's terms), and p = e^min(eta, 0) /
   (1 + e^-|eta|) (a select instead of the second exp stops GCC vectorising). */
CLONES
int64_t skre_intercept_rule(int64_t G, int64_t K, const int64_t *bounds,
                         const double *offset, const double *m,
                         const double *n, double tau, const double *u,
                         const double *W, const double *t,
                         const double *log_omega, double log_sqrt_2pi,
                         int64_t want, const double *Mg, const double *R0,
                         const double *V, double *s, double *nodes,
                         double *logpi, double *logm, double *np_sum,
                         double *w_sum, double *parts) {
    double *buf = malloc(4 * (size_t)(K > 0 ? K : 1) * sizeof(double));
    if (!buf) return -1;
    double *xi = buf, *h = buf + K, *P = buf + 2 * K, *w = buf + 3 * K;
    int64_t mid = K / 2;
    for (int64_t g = 0; g < G; g++) {
        double sg = 1.0 / sqrt(tau * tau * W[g] + 1.0);
        double *a = logpi + g * K, *x = nodes + g * K;
        s[g] = sg;
        for (int64_t k = 0; k < K; k++) {
            x[k] = u[g] + sg * t[k];
            xi[k] = tau * x[k];
            h[k] = P[k] = w[k] = 0.0;
        }
        for (int64_t i = bounds[g]; i < bounds[g + 1]; i++) {
            double off = offset[i], mi = m[i], ni = n ? n[i] : 1.0;
#pragma omp simd
            for (int64_t k = 0; k < K; k++) {
                double e = xi[k] + off, neg = e < 0.0 ? e : 0.0;
                double E = exp(-fabs(e)), D = 1.0 + E;
                double log_p = neg - log(D);
                double p = exp(neg) / D;
                h[k] += e * (mi - ni) + log_p * ni;
                P[k] += p * ni;
                w[k] += p * (1.0 - p) * ni;
            }
        }
        for (int64_t k = 0; k < K; k++) a[k] = (log_omega[k] - 0.5 * x[k] * x[k]) + h[k];
        if (want >= 1)
            for (int64_t k = 0; k < K; k++) np_sum[g * K + k] = P[k];
        if (want >= 2)
            for (int64_t k = 0; k < K; k++) w_sum[g * K + k] = w[k];
        double shift = (K % 2) ? a[mid] : (a[mid - 1] > a[mid] ? a[mid - 1] : a[mid]);
        double total = 0.0;
#pragma omp simd reduction(+ : total)
        for (int64_t k = 0; k < K; k++) total += exp(a[k] - shift);
        if (!(isfinite(total) && isfinite(shift))) {
            shift = a[0];
            for (int64_t k = 1; k < K; k++)
                if (a[k] > shift) shift = a[k];
            total = 0.0;
            for (int64_t k = 0; k < K; k++) total += exp(a[k] - shift);
        }
        double A = shift + log(total);
        for (int64_t k = 0; k < K; k++) a[k] -= A;
        logm[g] = log(sg) + A - log_sqrt_2pi;
        if (want >= 1) scores(g, G, K, tau, u[g], sg, W[g], R0[g], V[g], Mg[g], t, a, P,
                              want >= 2 ? w : NULL, parts);
    }
    free(buf);
    return 0;
}
