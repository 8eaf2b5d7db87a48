/* The groups' conditional modes of skre._core.slopes (SlopeLikelihood.modes),
   group by group: q <= 3 random effects, binary rows or counts.

   For group g (rows bounds[g] .. bounds[g+1]) the mode of
     h_g(u) = sum_i [m_i eta_i - n_i log(1 + e^eta_i)] - |u|^2 / 2,
     eta_i = offset_i + RL[i, :] . u,
   by Newton steps u += H^-1 grad (H = I + sum_i w_i RL_i RL_i', w = n p (1 - p),
   grad = sum_i (m_i - n_i p_i) RL_i - u), each step halved (up to 30 times)
   while h falls by more than 1e-12 (1 + |h|), until a step moves no entry of
   u by more than tol (1 + max |u|). The numpy version iterates every group
   until all have converged; here each stops when it has (the extra steps
   numpy takes are below tol).

   In: u (G, q) the starts. Out: u the modes, H (G, q, q) the curvature at
   them, eta the rows' logits there, h each group's h_g. n NULL: every n_i
   is 1. Returns the number of groups that reached max_iter, or -1 when the
   buffers could not be allocated. No Python API: loaded with ctypes
   (skre/_core/kernel.py). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* logits, log(1 + e^eta) and expit at u + t step, and h there */
static double trial(int64_t r0, int64_t len, int64_t q, const double *offset,
                    const double *RL, const double *m, const double *n,
                    const double *u, const double *step, double t, double *v,
                    double *eta, double *p) {
    double s = 0.0;
    for (int64_t j = 0; j < q; j++) {
        v[j] = u[j] + t * step[j];
        s -= 0.5 * v[j] * v[j];
    }
    for (int64_t k = 0; k < len; k++) {
        int64_t i = r0 + k;
        const double *r = RL + q * i;
        double e = offset[i] + r[0] * v[0];
        if (q > 1) e += r[1] * v[1];
        if (q > 2) e += r[2] * v[2];
        double E = exp(-fabs(e)), ni = n ? n[i] : 1.0;
        double sp = (e > 0.0 ? e : 0.0) + log(1.0 + E);
        eta[k] = e;
        p[k] = e >= 0.0 ? 1.0 / (1.0 + E) : E / (1.0 + E);
        s += m[i] * e - ni * sp;
    }
    return s;
}

/* H = I + sum_i w_i RL_i RL_i' and grad = sum_i r_i RL_i - u */
static void curvature(int64_t r0, int64_t len, int64_t q, const double *RL,
                      const double *m, const double *n, const double *u,
                      const double *p, double *H, double *grad) {
    for (int64_t a = 0; a < q * q; a++) H[a] = 0.0;
    for (int64_t a = 0; a < q; a++) {
        H[a * q + a] = 1.0;
        grad[a] = -u[a];
    }
    for (int64_t k = 0; k < len; k++) {
        int64_t i = r0 + k;
        const double *r = RL + q * i;
        double ni = n ? n[i] : 1.0, pk = p[k];
        double res = m[i] - ni * pk, w = ni * pk * (1.0 - pk);
        for (int64_t a = 0; a < q; a++) {
            grad[a] += res * r[a];
            for (int64_t b = 0; b <= a; b++) H[a * q + b] += w * r[a] * r[b];
        }
    }
    for (int64_t a = 0; a < q; a++)
        for (int64_t b = 0; b < a; b++) H[b * q + a] = H[a * q + b];
}

/* x = H^-1 g by the Cholesky factor of H (positive definite: I + a
   positive semi-definite sum) */
static void solve(int64_t q, const double *H, const double *g, double *x) {
    double C[9], y[3];
    for (int64_t j = 0; j < q; j++) {
        double s = H[j * q + j];
        for (int64_t k = 0; k < j; k++) s -= C[j * q + k] * C[j * q + k];
        C[j * q + j] = sqrt(s);
        for (int64_t i = j + 1; i < q; i++) {
            double v = H[i * q + j];
            for (int64_t k = 0; k < j; k++) v -= C[i * q + k] * C[j * q + k];
            C[i * q + j] = v / C[j * q + j];
        }
    }
    for (int64_t i = 0; i < q; i++) {
        double s = g[i];
        for (int64_t k = 0; k < i; k++) s -= C[i * q + k] * y[k];
        y[i] = s / C[i * q + i];
    }
    for (int64_t i = q - 1; i >= 0; i--) {
        double s = y[i];
        for (int64_t k = i + 1; k < q; k++) s -= C[k * q + i] * x[k];
        x[i] = s / C[i * q + i];
    }
}

int64_t skre_slope_modes(int64_t G, int64_t q, const double *offset, const double *RL,
                         const double *m, const double *n, const int64_t *bounds,
                         double tol, int64_t max_iter, double *u, double *H, double *eta,
                         double *h) {
    int64_t most = 1, stuck = 0;
    for (int64_t g = 0; g < G; g++)
        if (bounds[g + 1] - bounds[g] > most) most = bounds[g + 1] - bounds[g];
    double *p = malloc(sizeof(double) * most), *et = malloc(sizeof(double) * most),
           *pt = malloc(sizeof(double) * most);
    if (!p || !et || !pt) {
        free(p); free(et); free(pt);
        return -1;
    }
    for (int64_t g = 0; g < G; g++) {
        int64_t r0 = bounds[g], len = bounds[g + 1] - r0;
        double *ug = u + q * g, *Hg = H + q * q * g, *e = eta + r0;
        double grad[3], step[3] = {0.0, 0.0, 0.0}, v[3], vt[3];
        double hg = trial(r0, len, q, offset, RL, m, n, ug, step, 0.0, v, e, p);
        int64_t it = 0;
        for (; it < max_iter; it++) {
            curvature(r0, len, q, RL, m, n, ug, p, Hg, grad);
            solve(q, Hg, grad, step);
            double size = 0.0, big = 0.0;
            for (int64_t a = 0; a < q; a++) {
                if (fabs(step[a]) > size) size = fabs(step[a]);
                if (fabs(ug[a]) > big) big = fabs(ug[a]);
            }
            if (size <= tol * (1.0 + big)) {
                /* the last (full) step too, unless h falls (as the halving tests it): numpy's steps
                   go on while any group's step is over tol, so that a
                   group's mode is as good as numpy's only with it (on
                   strongly curved integrands a mode 1e-11 off moves the
                   rule's value by 1e-10) */
                if (size <= 1e-13 * (1.0 + big)) break; /* rounding: a
                   mode found again stays where it was, and its value too */
                double hn = trial(r0, len, q, offset, RL, m, n, ug, step, 1.0, vt, et, pt);
                if (!(hn < hg - 1e-12 * (1.0 + fabs(hg)))) {
                    for (int64_t a = 0; a < q; a++) ug[a] = vt[a];
                    for (int64_t k = 0; k < len; k++) {
                        e[k] = et[k];
                        p[k] = pt[k];
                    }
                    hg = hn;
                    curvature(r0, len, q, RL, m, n, ug, p, Hg, grad);
                }
                break;
            }
            double t = 1.0, hn = 0.0;
            for (int halving = 0; halving < 30; halving++) {
                hn = trial(r0, len, q, offset, RL, m, n, ug, step, t, vt, et, pt);
                if (!(hn < hg - 1e-12 * (1.0 + fabs(hg)))) break;
                t *= 0.5;
            }
            for (int64_t a = 0; a < q; a++) ug[a] = vt[a];
            for (int64_t k = 0; k < len; k++) {
                e[k] = et[k];
                p[k] = pt[k];
            }
            hg = hn;
        }
        if (it == max_iter) {
            stuck++;
            curvature(r0, len, q, RL, m, n, ug, p, Hg, grad);
        }
        h[g] = hg;
    }
    free(p); free(et); free(pt);
    return stuck;
}
