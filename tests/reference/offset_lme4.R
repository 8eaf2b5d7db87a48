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
  glmer = glmers
)), "offset_lme4.json")
