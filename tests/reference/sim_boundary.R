# Boundary data set: NO between-group variation, chosen so that glmer's tau
# estimate is exactly 0 (singular fit).
# Run:  cd tests/reference && Rscript sim_boundary.R
# Writes data/sim_boundary.csv (group, m, n) and sim_boundary.json.
f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
source(file.path(if (length(f) == 1) dirname(f) else ".", "common.R"))  # sets REF_DIR, REPO_ROOT

G <- 30; n_per <- 20; p_true <- 0.3
simulate <- function(seed) {
  RNGkind("Mersenne-Twister", "Inversion", "Rejection")
  set.seed(seed)
  data.frame(group = seq_len(G), m = rbinom(G, n_per, p_true), n = n_per)
}
# Score of the marginal log-likelihood w.r.t. tau^2 at tau = 0 (b at the glm
# MLE): 0.5 * sum_g [(m_g - n_g p)^2 - n_g p (1 - p)].  Negative means the data
# are under-dispersed between groups, so tau = 0 is a (local) maximum.
score_tau2 <- function(d) {
  p <- sum(d$m) / sum(d$n)
  0.5 * sum((d$m - d$n * p)^2 - d$n * p * (1 - p))
}
# Try seeds 1, 2, ... and keep the first whose score is clearly negative
# (< -10) and where every glmer fit below returns theta == 0 exactly.
form <- cbind(m, n - m) ~ 1 + (1 | group)
for (seed in 1:1000) {
  d <- simulate(seed)
  if (score_tau2(d) > -10) next
  thetas <- c(sapply(c(1, 25), function(q) {
    c(getME(with_warnings(glmer(form, d, binomial, nAGQ = q))$value, "theta"),
      getME(with_warnings(glmer(form, d, binomial, nAGQ = q, control = tight_control()))$value, "theta"))
  }))
  if (all(thetas == 0)) break
}
dir.create(file.path(REF_DIR, "data"), showWarnings = FALSE)
csv <- file.path(REF_DIR, "data", "sim_boundary.csv")
write.csv(d, csv, row.names = FALSE)

# --- fit on the data as read back from the CSV ------------------------------
d <- read.csv(csv)
X <- matrix(1, nrow(d), 1, dimnames = list(NULL, "(Intercept)"))
cp <- glm(cbind(m, n - m) ~ 1, binomial, d)
blk <- glmer_block(form, d, X, d$group, d$m, d$n)

write_ref(c(versions(c("lme4", "Matrix")), list(
  script = "sim_boundary.R",
  data = "tests/reference/data/sim_boundary.csv",
  simulation = list(seed = seed, rng = "Mersenne-Twister/Inversion/Rejection",
                    n_groups = G, n_per_group = n_per, true_p = p_true, true_tau = 0,
                    selection = "first seed in 1.. with score_tau2 < -10 and theta == 0 in all 4 glmer fits",
                    score_tau2_at_0 = score_tau2(d)),
  notes = paste(
    "All loglik values include binomial constants (sum_lchoose). At tau = 0 the random-intercept",
    "likelihood equals the complete-pooling glm likelihood, so glmer loglik_with_constants",
    "should equal complete_pooling$loglik and glmer fixef the glm intercept (qlogis(sum m/sum n)).",
    "lme4 nAGQ=25 loglik_lme4 omits saturated_loglik = sum(dbinom(m, n, m/n, log=TRUE)).",
    "'r_warnings'/'lme4_messages' record lme4's singular-fit message if any."),
  sum_lchoose = sum(lchoose(d$n, d$m)),
  saturated_loglik = saturated_loglik(d$m, d$n),
  complete_pooling = list(formula = "glm(cbind(m, n - m) ~ 1, binomial)",
                          intercept = unname(coef(cp)), se = unname(sqrt(diag(vcov(cp)))),
                          loglik = as.numeric(logLik(cp)), AIC = AIC(cp), nobs = nobs(cp),
                          qlogis_pooled = qlogis(sum(d$m) / sum(d$n))),
  glmer = strip_fits(blk))), "sim_boundary.json")
