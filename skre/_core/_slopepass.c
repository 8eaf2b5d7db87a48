/* The random-slope node pass of skre._core.slopes, fused: binary rows, q <= 3.

   For each group g (rows bounds[g] .. bounds[g+1]) and node k of the rule:
     eta_ik = eh_i + sum_j D[j, i] T[j, k]          (the row's logit there)
     a_gk   = sum_j pg[g, j] pn[j, k]               (the node's weight and prior)
            + sum_i (m_i - 1) eta_ik - log prod_i (1 + exp(-eta_ik))
     logm_g = log sum_k exp(a_gk),  pi_gk = exp(a_gk - logm_g)
     tmom[g]  = sum_k pi_gk [T[:, k], T[:, k] T[:, k]']
     rmom[i]  = sum_k (m_i - expit(eta_ik)) pi_gk [1, T[:, k]]     (with grad)
   which is the numpy pass of SlopeLikelihood._evaluate for rows with one
   trial each (the kernel m eta - log(1 + e^eta) is (m - 1) eta - log(1 +
   e^-eta)). One exp per row and node and one log per group and node (the
   product of the 1 + e^-eta over the group's rows); the loops over nodes
   are vectorised with glibc's vector exp and log (libmvec), one clone per
   instruction set (AVX-512, AVX2, baseline) chosen at load time.

   A group with a row whose logit can leave +-600 at some node is computed
   without the product (each row's log(1 + e^-eta) and expit in their
   overflow-free forms), and so is a node whose product exceeds 1e300.
   Returns the number of groups computed that way. No Python API: loaded
   with ctypes (skre/_core/kernel.py). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "_vecmath.h"

#define LIMIT 600.0
#define BIG 1e300
/* the row-node expits kept for the residual moments (doubles): a larger
   group computes them again in a second pass */
#define KEEP (1 << 20)

static double softplus(double x) { /* log(1 + e^x) without overflow */
    return (x > 0 ? x : 0.0) + log1p(exp(-fabs(x)));
}

static double expit(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

/* eta at every node of row i, into out */
static inline void row_eta(int64_t N, int64_t q, int64_t rows, const double *D,
                           const double *eh, const double *T, int64_t i, double *out) {
    double e = eh[i], d0 = D[i], d1 = q > 1 ? D[rows + i] : 0.0,
           d2 = q > 2 ? D[2 * rows + i] : 0.0;
    const double *T0 = T, *T1 = T + N, *T2 = T + 2 * N;
    if (q == 1) {
#pragma omp simd
        for (int64_t k = 0; k < N; k++) out[k] = e + d0 * T0[k];
    } else if (q == 2) {
#pragma omp simd
        for (int64_t k = 0; k < N; k++) out[k] = e + d0 * T0[k] + d1 * T1[k];
    } else {
#pragma omp simd
        for (int64_t k = 0; k < N; k++)
            out[k] = e + d0 * T0[k] + d1 * T1[k] + d2 * T2[k];
    }
}

/* A product rule, T[:, k] = (z[k_1], ..., z[k_q]) with k = ((k_1 K) + k_2) K +
   ...: e^-eta factors into e^-(eh + d_1 z[k_1]) e^-(d_2 z[k_2]) ..., q K exps
   for the row instead of K^q (every factor finite: the group is within
   LIMIT). Multiplies the row's 1 + e^-eta into pr, and its expits into Pi. */
static inline void tensor_row(int64_t K, int64_t q, int64_t rows, const double *D,
                              const double *eh, const double *z, int64_t i, double *E,
                              double *pr, double *Pi) {
    double e = eh[i], d0 = D[i], d1 = D[rows + i], d2 = q > 2 ? D[2 * rows + i] : 0.0;
    double *A = E, *B = E + K, *C = E + 2 * K;
#pragma omp simd
    for (int64_t j = 0; j < K; j++) {
        A[j] = exp(-(e + d0 * z[j]));
        B[j] = exp(-d1 * z[j]);
        C[j] = exp(-d2 * z[j]);
    }
    int64_t outer = q > 2 ? K * K : K;
    for (int64_t ab = 0; ab < outer; ab++) {
        double f = q > 2 ? A[ab / K] * B[ab % K] : A[ab];
        const double *last = q > 2 ? C : B;
        double *prr = pr + ab * K;
        if (Pi) {
            double *Pr = Pi + ab * K;
#pragma omp simd
            for (int64_t c = 0; c < K; c++) {
                double v = 1.0 + f * last[c];
                prr[c] *= v;
                Pr[c] = 1.0 / v;
            }
        } else {
#pragma omp simd
            for (int64_t c = 0; c < K; c++) prr[c] *= 1.0 + f * last[c];
        }
    }
}

CLONES
int64_t skre_slope_pass(int64_t G, int64_t N, int64_t q, int64_t J, int64_t rows,
                        const double *D, const double *eh, const double *m,
                        const double *T, const double *pg, const double *pn,
                        const int64_t *bounds, int64_t grad, int64_t K, const double *z,
                        double *logm, double *tmom, double *rmom) {
    int64_t most = 0, careful = 0, nt = q + q * q;
    for (int64_t g = 0; g < G; g++)
        if (bounds[g + 1] - bounds[g] > most) most = bounds[g + 1] - bounds[g];
    int64_t keep = most * N <= KEEP ? most : 0;
    double tmax[3] = {0.0, 0.0, 0.0};
    for (int64_t j = 0; j < q; j++)
        for (int64_t k = 0; k < N; k++)
            if (fabs(T[j * N + k]) > tmax[j]) tmax[j] = fabs(T[j * N + k]);
    double *a = malloc(sizeof(double) * N), *pr = malloc(sizeof(double) * N),
           *eta = malloc(sizeof(double) * N), *P = malloc(sizeof(double) * (keep * N + 1)),
           *E = malloc(sizeof(double) * (3 * K + 1));
    if (!a || !pr || !eta || !P || !E) {
        free(a); free(pr); free(eta); free(P); free(E);
        return -1;
    }
    for (int64_t g = 0; g < G; g++) {
        int64_t r0 = bounds[g], r1 = bounds[g + 1];
        /* the nodes' weights and the prior, and the kernel's linear part */
#pragma omp simd
        for (int64_t k = 0; k < N; k++) a[k] = 0.0;
        for (int64_t j = 0; j < J; j++) {
            double c = pg[g * J + j];
            const double *row = pn + j * N;
#pragma omp simd
            for (int64_t k = 0; k < N; k++) a[k] += c * row[k];
        }
        double c[3] = {0.0, 0.0, 0.0}, ce = 0.0, reach = 0.0;
        for (int64_t i = r0; i < r1; i++) {
            double w = m[i] - 1.0, s = fabs(eh[i]);
            ce += w * eh[i];
            for (int64_t j = 0; j < q; j++) {
                c[j] += w * D[j * rows + i];
                s += fabs(D[j * rows + i]) * tmax[j];
            }
            if (s > reach) reach = s;
        }
        for (int64_t j = 0; j < q; j++) {
            const double *Tj = T + j * N;
            double cj = c[j];
#pragma omp simd
            for (int64_t k = 0; k < N; k++) a[k] += cj * Tj[k];
        }
        int safe = reach > LIMIT;
        careful += safe;
        /* - sum_i log(1 + e^-eta): one log per node of the rows' product */
#pragma omp simd
        for (int64_t k = 0; k < N; k++) pr[k] = safe ? 0.0 : 1.0;
        for (int64_t i = r0; i < r1; i++) {
            if (safe || !K) row_eta(N, q, rows, D, eh, T, i, eta);
            double *Pi = keep ? P + (i - r0) * N : eta;
            if (safe) {
                for (int64_t k = 0; k < N; k++) {
                    pr[k] += softplus(-eta[k]);
                    if (keep) Pi[k] = expit(eta[k]);
                }
            } else if (K) {
                tensor_row(K, q, rows, D, eh, z, i, E, pr, keep && grad ? Pi : NULL);
            } else if (keep && grad) {
#pragma omp simd
                for (int64_t k = 0; k < N; k++) {
                    double v = 1.0 + exp(-eta[k]);
                    pr[k] *= v;
                    Pi[k] = 1.0 / v;
                }
            } else {
#pragma omp simd
                for (int64_t k = 0; k < N; k++) pr[k] *= 1.0 + exp(-eta[k]);
            }
        }
        double *lp = eta; /* (eta is free again) */
        if (safe) {
#pragma omp simd
            for (int64_t k = 0; k < N; k++) lp[k] = pr[k];
        } else {
#pragma omp simd
            for (int64_t k = 0; k < N; k++) lp[k] = log(pr[k]);
            for (int64_t k = 0; k < N; k++) {
                if (pr[k] <= BIG) continue;
                /* the product overflowed: the sum of the logs */
                double v = 0.0;
                for (int64_t i = r0; i < r1; i++) {
                    double e = eh[i];
                    for (int64_t j = 0; j < q; j++) e += D[j * rows + i] * T[j * N + k];
                    v += softplus(-e);
                }
                lp[k] = v;
            }
        }
        double mx = -INFINITY;
        for (int64_t k = 0; k < N; k++) {
            a[k] += ce - lp[k];
            if (a[k] > mx) mx = a[k];
        }
        /* the node weights pi, the group's value and E[t], E[t t'] */
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (int64_t k = 0; k < N; k++) {
            double e = exp(a[k] - mx);
            a[k] = e;
            s += e;
        }
        logm[g] = mx + log(s);
        double inv = 1.0 / s, *tm = tmom + nt * g;
#pragma omp simd
        for (int64_t k = 0; k < N; k++) a[k] *= inv;
        for (int64_t j = 0; j < q; j++) {
            const double *Tj = T + j * N;
            double v = 0.0;
#pragma omp simd reduction(+ : v)
            for (int64_t k = 0; k < N; k++) v += a[k] * Tj[k];
            tm[j] = v;
            for (int64_t l = 0; l <= j; l++) {
                const double *Tl = T + l * N;
                double w = 0.0;
#pragma omp simd reduction(+ : w)
                for (int64_t k = 0; k < N; k++) w += a[k] * Tj[k] * Tl[k];
                tm[q + j * q + l] = w;
                tm[q + l * q + j] = w;
            }
        }
        if (!grad) continue;
        /* each row's residual averaged over the nodes: E[r], E[r t] */
        for (int64_t i = r0; i < r1; i++) {
            const double *Pi;
            if (keep) {
                Pi = P + (i - r0) * N;
            } else {
                row_eta(N, q, rows, D, eh, T, i, eta);
                if (safe) {
                    for (int64_t k = 0; k < N; k++) eta[k] = expit(eta[k]);
                } else {
#pragma omp simd
                    for (int64_t k = 0; k < N; k++) eta[k] = 1.0 / (1.0 + exp(-eta[k]));
                }
                Pi = eta;
            }
            double mi = m[i], s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
            const double *T0 = T, *T1 = T + (q > 1 ? N : 0), *T2 = T + (q > 2 ? 2 * N : 0);
#pragma omp simd reduction(+ : s0, s1, s2, s3)
            for (int64_t k = 0; k < N; k++) {
                double r = (mi - Pi[k]) * a[k];
                s0 += r;
                s1 += r * T0[k];
                s2 += r * T1[k];
                s3 += r * T2[k];
            }
            double *out = rmom + (1 + q) * i;
            out[0] = s0;
            out[1] = s1;
            if (q > 1) out[2] = s2;
            if (q > 2) out[3] = s3;
        }
    }
    free(a); free(pr); free(eta); free(P); free(E);
    return careful;
}
