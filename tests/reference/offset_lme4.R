# Simulated counts with an offset (log exposure): 40 groups x 4 rows, the
# references of skre's offset= for all three estimators (issue 25).
# Run:  cd tests/reference && Rscript offset_lme4.R
# Writes data/offset_counts.csv (group, x, lt, m, n) and offset_lme4.json.
f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
source(file.path(if (length(f) == 1) dirname(f) else ".", "common.R"))

RNGkind("Mersenne-Twister", "Inversion", "Rejection")
set.seed(20261206)
G <- 40
d <- data.frame(group = rep(seq_len(G), each = 4))
d$x <- rnorm(nrow(d))
d$lt <- log(runif(nrow(d), 0.2, 3))  # log exposure, coefficient 1
u <- rnorm(G, 0, 0.7)  # true tau = 0.7
d$n <- sample(3:25, nrow(d), replace = TRUE)
d$m <- rbinom(nrow(d), d$n, plogis(-1.2 + 0.5 * d$x + d$lt + u[d$group]))
dir.create(file.path(REF_DIR, "data"), showWarnings = FALSE)
csv <- file.path(REF_DIR, "data", "offset_counts.csv")
write.csv(d, csv, row.names = FALSE)
d <- read.csv(csv)

cp <- glm(cbind(m, n - m) ~ x + offset(lt), binomial, d)
np <- glm(cbind(m, n - m) ~ 0 + factor(group) + x + offset(lt), binomial, d)
X1 <- cbind(model.matrix(~ x, d), lt = d$lt)  # the offset as a column of
# coefficient 1, for the independent log-likelihood (common.R)
glmers <- list()
for (q in c(1, 25)) {
  ft <- glmer(cbind(m, n - m) ~ x + offset(lt) + (1 | group), d, binomial,
              nAGQ = q, control = tight_control())
  tau <- unname(getME(ft, "theta"))
  glmers[[paste0("nagq", q)]] <- list(
    fixef = as.list(fixef(ft)), tau = tau,
    loglik_with_constants_independent = marginal_loglik(
      c(fixef(ft), 1), tau, X1, d$group, d$m, d$n,
      if (q > 1) "agq" else "laplace", q),
    ranef = unname(ranef(ft)$group[, 1])
  )
}

# large offsets, where a start that ignores them leaves every weight at 0
# (the 0.2 solver then stopped at its start and called it converged)
large <- data.frame(
  g = c(16, 16, 16, 17, 17, 17, 23, 23, 23, 24, 24, 24),
  x = c(0.88, -1.555, 1.226, 1.11, -1.065, 0.373, -1.361, 0.899, 0.333, -0.73,
        0.627, -0.282),
  lt = c(7.514, 7.902, 6.93, 6.969, 8.153, 7.957, 6.33, 8.186, 7.556, 6.23, 8.019,
         7.676),
  m = c(8, 21, 24, 3, 1, 3, 0, 11, 3, 1, 8, 2),
  n = c(10, 25, 29, 16, 9, 23, 7, 16, 15, 22, 20, 17))
np_large <- glm(cbind(m, n - m) ~ 0 + factor(g) + x + offset(lt), binomial, large)
cp_large <- glm(cbind(m, n - m) ~ x + offset(lt), binomial, large)
const <- data.frame(g = c(0, 0, 1, 1), off = 40, m = c(3, 4, 10, 2), n = c(10, 10, 12, 9))
cp_const <- glm(cbind(m, n - m) ~ 1 + offset(off), binomial, const)

write_ref(c(versions(c("lme4")), list(
  script = "offset_lme4.R",
  data = "tests/reference/data/offset_counts.csv",
  notes = paste("glm logLik with binomial constants; glmer loglik recomputed",
                "independently with constants at lme4's estimate (common.R's",
                "marginal_loglik, the offset a column of coefficient 1); tight",
                "glmer control."),
  complete_pooling = list(coef = as.list(coef(cp)), se = as.list(sqrt(diag(vcov(cp)))),
                          loglik = as.numeric(logLik(cp))),
  no_pooling = list(x = unname(coef(np)["x"]), loglik = as.numeric(logLik(np)),
                    intercepts = unname(coef(np)[seq_len(G)])),
  glmer = glmers,
  large_offsets = list(
    data = large,
    no_pooling = list(coef = unname(coef(np_large)), loglik = as.numeric(logLik(np_large))),
    complete_pooling = list(coef = unname(coef(cp_large)), loglik = as.numeric(logLik(cp_large))),
    constant_40 = list(data = const, intercept = unname(coef(cp_const)),
                       loglik = as.numeric(logLik(cp_const)))
  )
)), "offset_lme4.json")
