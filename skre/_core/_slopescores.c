/* Each group's exact gradient of its rule's value (skre._core.slopes,
   SlopeLikelihood._scores), group by group: q <= 3 random effects, p fixed
   covariates, binary rows or counts. The derivation is in _scores'
   docstring and comments; this is the same arithmetic on one group's q x q
   matrices at a time (numpy's stacked products of 2 x 2 matrices cost about
   40 ns a matrix, each of them a pass over memory).

   Per row i (rows of group g: bounds[g] .. bounds[g+1]): R (rows, q) the
   random-effect design, RL = R L, X (rows, p), the counts m, n (NULL: every
   n is 1), eta the logit at the mode; rmom (rows, 1 + q) the residual
   averaged over the group's nodes, E[r] and E[r t] (nodes = 0: the Laplace
   rule, where E[r] is the residual at the mode and E[r t] = 0). Per group:
   u the mode, Hinv (q, q) the inverse curvature, C its Cholesky factor,
   tmom (q + q^2) E[t] and E[t t'] (ignored when nodes = 0). L (q, q) the
   covariance's Cholesky factor, ea, eb the packed entries of L (n_theta of
   them). Out: scores (G, p + 1 + n_theta). Returns -1 when the buffers
   could not be allocated, else 0. No Python API (skre/_core/kernel.py). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* out = A B, or A B' with transpose (q x q, row-major) */
static void product(int64_t q, const double *A, const double *B, int transpose,
                    double *out) {
    for (int64_t a = 0; a < q; a++)
        for (int64_t b = 0; b < q; b++) {
            double s = 0.0;
            for (int64_t c = 0; c < q; c++)
                s += A[a * q + c] * (transpose ? B[b * q + c] : B[c * q + b]);
            out[a * q + b] = s;
        }
}

int64_t skre_slope_scores(int64_t G, int64_t q, int64_t p, int64_t n_theta,
                          const int64_t *bounds, const double *R, const double *RL,
                          const double *X, const double *m, const double *n,
                          const double *eta, int64_t nodes, const double *rmom,
                          const double *u, const double *Hinv, const double *C,
                          const double *tmom, const double *L, const int64_t *ea,
                          const int64_t *eb, double *scores) {
    int64_t most = 1, k1 = 1 + q, width = p + 1 + n_theta;
    for (int64_t g = 0; g < G; g++)
        if (bounds[g + 1] - bounds[g] > most) most = bounds[g + 1] - bounds[g];
    double *w = malloc(sizeof(double) * most), *w1s = malloc(sizeof(double) * most),
           *rb = malloc(sizeof(double) * most);
    if (!w || !w1s || !rb) {
        free(w); free(w1s); free(rb);
        return -1;
    }
    for (int64_t g = 0; g < G; g++) {
        int64_t r0 = bounds[g], len = bounds[g + 1] - r0;
        const double *ug = u + q * g, *Hg = Hinv + q * q * g, *Cg = C + q * q * g;
        double S[3] = {0}, Sr0[3] = {0}, RrT[9] = {0}, A[9] = {0};
        double tbar[3] = {0}, T2[9] = {0};
        if (nodes)
            for (int64_t a = 0; a < q; a++) {
                tbar[a] = tmom[(q + q * q) * g + a];
                for (int64_t b = 0; b < q; b++)
                    T2[a * q + b] = tmom[(q + q * q) * g + q + a * q + b];
            }
        /* at the mode: the residual and weight; sums of E[r] R, R E[r t]',
           res R and w R R' */
        for (int64_t k = 0; k < len; k++) {
            int64_t i = r0 + k;
            double e = eta[i], ni = n ? n[i] : 1.0;
            double prob = e >= 0.0 ? 1.0 / (1.0 + exp(-e)) : exp(e) / (1.0 + exp(e));
            double res = m[i] - ni * prob, wi = ni * prob * (1.0 - prob);
            double rbar = nodes ? rmom[k1 * i] : res;
            const double *Ri = R + q * i;
            rb[k] = rbar;
            w[k] = wi;
            w1s[k] = wi * (1.0 - 2.0 * prob);
            for (int64_t a = 0; a < q; a++) {
                S[a] += rbar * Ri[a];
                Sr0[a] += res * Ri[a];
                if (nodes)
                    for (int64_t b = 0; b < q; b++) RrT[a * q + b] += Ri[a] * rmom[k1 * i + 1 + b];
                for (int64_t b = 0; b < q; b++) A[a * q + b] += wi * Ri[a] * Ri[b];
            }
        }
        /* m1 = L' S - u - C E[t]; M2 = L' RrT - u E[t]' - C E[t t'] */
        double m1[3], M2[9], Wt[9], CW[9], Q[9], LQ[9], P[9];
        for (int64_t a = 0; a < q; a++) {
            double v = -ug[a];
            for (int64_t c = 0; c < q; c++) v += L[c * q + a] * S[c] - Cg[a * q + c] * tbar[c];
            m1[a] = v;
            for (int64_t b = 0; b < q; b++) {
                double s = -ug[a] * tbar[b];
                for (int64_t c = 0; c < q; c++)
                    s += L[c * q + a] * RrT[c * q + b] - Cg[a * q + c] * T2[c * q + b];
                M2[a * q + b] = s;
            }
        }
        /* Wt = tril(C' M2), diagonal halved; Q = -C Wt C' - Hinv / 2 */
        for (int64_t a = 0; a < q; a++)
            for (int64_t b = 0; b < q; b++) {
                double s = 0.0;
                if (a >= b)
                    for (int64_t c = 0; c < q; c++) s += Cg[c * q + a] * M2[c * q + b];
                Wt[a * q + b] = a == b ? 0.5 * s : s;
            }
        product(q, Cg, Wt, 0, CW);
        product(q, CW, Cg, 1, Q);
        for (int64_t a = 0; a < q * q; a++) Q[a] = -Q[a] - 0.5 * Hg[a];
        /* P = L Q L' */
        product(q, L, Q, 0, LQ);
        product(q, LQ, L, 1, P);
        /* s_i = R_i' P R_i, w'_i s_i; z = Hinv (m1 + sum_i w'_i s_i RL_i) */
        double V[3] = {0}, z[3];
        for (int64_t k = 0; k < len; k++) {
            const double *Ri = R + q * (r0 + k), *RLi = RL + q * (r0 + k);
            double s = 0.0;
            for (int64_t a = 0; a < q; a++)
                for (int64_t b = 0; b < q; b++) s += Ri[a] * P[a * q + b] * Ri[b];
            w1s[k] *= s;
            for (int64_t a = 0; a < q; a++) V[a] += w1s[k] * RLi[a];
        }
        for (int64_t a = 0; a < q; a++) {
            double s = 0.0;
            for (int64_t b = 0; b < q; b++) s += Hg[a * q + b] * (m1[b] + V[b]);
            z[a] = s;
        }
        /* each row's weight E[r] + c_i, c_i = w'_i s_i - w_i RL_i' z, on
           the direct derivatives of eta: X, 1 and R_a u_b */
        double *out = scores + width * g, sR[3] = {0};
        for (int64_t j = 0; j < width; j++) out[j] = 0.0;
        for (int64_t k = 0; k < len; k++) {
            int64_t i = r0 + k;
            const double *Ri = R + q * i, *RLi = RL + q * i, *Xi = X + p * i;
            double rz = 0.0;
            for (int64_t a = 0; a < q; a++) rz += RLi[a] * z[a];
            double e = rb[k] + w1s[k] - w[k] * rz;
            for (int64_t j = 0; j < p; j++) out[j] += e * Xi[j];
            for (int64_t a = 0; a < q; a++) sR[a] += e * Ri[a];
        }
        out[p] = sR[0];
        double AL[9];
        product(q, A, L, 0, AL);
        for (int64_t j = 0; j < n_theta; j++) {
            int64_t a = ea[j], b = eb[j];
            double s = sR[a] * ug[b] + z[b] * Sr0[a];
            for (int64_t c = 0; c < q; c++)
                s += RrT[a * q + c] * Cg[b * q + c] + AL[a * q + c] * (Q[b * q + c] + Q[c * q + b]);
            out[p + 1 + j] = s;
        }
    }
    free(w); free(w1s); free(rb);
    return 0;
}
