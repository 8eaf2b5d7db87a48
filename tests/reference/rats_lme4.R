# Reference numbers for the rats tumour data (71 batches, m of n rats).
# Run:  cd tests/reference && Rscript rats_lme4.R
# Writes rats_lme4.json (fits) and rats_lme4_intervals.json (CIs, ranef).
f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
source(file.path(if (length(f) == 1) dirname(f) else ".", "common.R"))  # sets REF_DIR, REPO_ROOT
suppressPackageStartupMessages({ library(MASS); library(glmmTMB) })

d <- read.csv(file.path(REPO_ROOT, "skre", "datasets", "data", "rats.csv"))
stopifnot(nrow(d) == 71)
X <- matrix(1, nrow(d), 1, dimnames = list(NULL, "(Intercept)"))
lchoose_sum <- sum(lchoose(d$n, d$m))
sat_ll <- saturated_loglik(d$m, d$n)

# --- complete pooling ------------------------------------------------------
cp <- glm(cbind(m, n - m) ~ 1, family = binomial, data = d)
prof_ci <- suppressMessages(confint(cp))      # profile likelihood (MASS)
complete_pooling <- list(
  formula = "glm(cbind(m, n - m) ~ 1, binomial)",
  intercept = unname(coef(cp)), se = unname(sqrt(diag(vcov(cp)))),
  wald_ci_95 = unname(confint.default(cp)[1, ]),
  profile_ci_95 = unname(prof_ci),
  loglik = as.numeric(logLik(cp)), AIC = AIC(cp), BIC = BIC(cp),
  df = attr(logLik(cp), "df"), nobs = nobs(cp), deviance = deviance(cp),
  note = "logLik includes binomial constants; BIC uses nobs = 71 rows (batches), not sum(n) trials")

# --- no pooling ------------------------------------------------------------
np <- glm(cbind(m, n - m) ~ 0 + factor(batch), family = binomial, data = d)
no_pooling <- list(
  formula = "glm(cbind(m, n - m) ~ 0 + factor(batch), binomial)",
  loglik = as.numeric(logLik(np)), AIC = AIC(np), BIC = BIC(np),
  df = attr(logLik(np), "df"), nobs = nobs(np), converged = np$converged,
  saturated_loglik = sat_ll,
  n_batches_m_eq_0 = sum(d$m == 0), n_batches_m_eq_n = sum(d$m == d$n),
  min_coef = min(coef(np)),
  note = paste("Batches with m = 0 have no finite MLE; glm stops at a large negative",
               "coefficient (min_coef), so its logLik is slightly below the exact",
               "maximum saturated_loglik = sum(dbinom(m, n, m/n, log = TRUE))."))

# --- glmer: Laplace and nAGQ = 25, default and tight -----------------------
form <- cbind(m, n - m) ~ 1 + (1 | batch)
blk <- glmer_block(form, d, X, d$batch, d$m, d$n)

# --- glmmTMB cross-check (Laplace, constants included) ---------------------
tmb <- glmmTMB(form, data = d, family = binomial)
glmmtmb <- list(
  fixef = as.list(fixef(tmb)$cond),
  tau = unname(attr(VarCorr(tmb)$cond$batch, "stddev")),
  loglik = as.numeric(logLik(tmb)),
  convergence = tmb$fit$convergence, message = tmb$fit$message,
  pdHess = tmb$sdr$pdHess,
  note = "glmmTMB uses the Laplace approximation; its logLik includes binomial constants")

write_ref(c(versions(c("lme4", "glmmTMB", "MASS", "Matrix")), list(
  script = "rats_lme4.R",
  data = "skre/datasets/data/rats.csv",
  notes = paste(
    "loglik_with_constants = full binomial log-likelihood incl. log choose(n, m).",
    "lme4 Laplace (nAGQ=1): logLik already includes the constants.",
    "lme4 nAGQ>1: the quadrature integrates exp(-deviance residuals/2), so lme4's logLik",
    "is log L - saturated_loglik, where saturated_loglik = sum(dbinom(m, n, m/n, log=TRUE))",
    "(= sum lchoose(n,m) + sum of m log(m/n) + (n-m) log(1-m/n)); NOT just sum lchoose.",
    "Likewise AIC_lme4/BIC_lme4 for nAGQ>1 omit that constant; *_with_constants add it back.",
    "loglik_with_constants_independent re-evaluates the approximation (Laplace or 25-point",
    "adaptive Gauss-Hermite) at the fitted parameters in plain R (common.R); for Laplace lme4",
    "differs from it by ~1e-7 because lme4 evaluates log|L| with PIRLS weights from the",
    "previous iterate. loglik_exact_integral uses stats::integrate per group.",
    "tau = getME(fit,'theta') = SD of the random intercept. 'tight' fits (nloptwrap BOBYQA,",
    "xtol_abs=ftol_abs=1e-14, tolPwrss=1e-12) are the references; 'default' = glmerControl()."),
  sum_lchoose = lchoose_sum,
  saturated_loglik = sat_ll,
  complete_pooling = complete_pooling,
  no_pooling = no_pooling,
  glmer = strip_fits(blk),
  glmmTMB = glmmtmb)), "rats_lme4.json")

# --- intervals, vcov, conditional modes -----------------------------------
f25 <- blk$nagq25$fits$tight
f1 <- blk$laplace$fits$tight
prof <- confint(f25, method = "profile", oldNames = FALSE)
wald <- confint(f25, method = "Wald", oldNames = FALSE)
ci_list <- function(ci) lapply(split(ci, row(ci)), unname) |> setNames(rownames(ci))
per_batch <- function(fit) {
  re <- ranef(fit, condVar = TRUE)$batch
  list(batch = as.integer(rownames(re)),
       cond_mode = unname(re[, 1]),
       cond_sd = sqrt(unname(attr(re, "postVar")[1, 1, ])),
       coef = unname(coef(fit)$batch[, 1]))
}
write_ref(c(versions(c("lme4", "Matrix")), list(
  script = "rats_lme4.R",
  notes = paste(
    "All from the tight fits of cbind(m, n-m) ~ 1 + (1|batch).",
    "profile CI: confint(fit, method='profile') (rows: sd_(Intercept)|batch = tau, (Intercept)).",
    "Wald CI: only for fixed effects (tau row is null).",
    "vcov_hessian = vcov(fit) (lme4 default, from the finite-difference Hessian of the",
    "deviance over (theta, beta)); vcov_rx = vcov(fit, use.hessian=FALSE) (conditional on theta;",
    "lme4 warns that the two differ by > 1e-4, which is expected here).",
    "ranef cond_mode = conditional mode of b_g (= tau*u_g); cond_sd = sqrt of postVar, which lme4",
    "computes from the Laplace (Gaussian) approximation at the mode even when nAGQ=25.",
    "coef = fixef + ranef per batch (logit scale)."),
  nagq25 = list(
    fixef = as.list(fixef(f25)), tau = unname(getME(f25, "theta")),
    profile_ci_95 = ci_list(prof), wald_ci_95 = ci_list(wald),
    vcov_hessian = unname(as.matrix(vcov(f25))[1, 1]),
    vcov_rx = unname(as.matrix(suppressWarnings(vcov(f25, use.hessian = FALSE)))[1, 1]),
    per_batch = per_batch(f25)),
  laplace = list(
    fixef = as.list(fixef(f1)), tau = unname(getME(f1, "theta")),
    vcov_hessian = unname(as.matrix(vcov(f1))[1, 1]),
    vcov_rx = unname(as.matrix(suppressWarnings(vcov(f1, use.hessian = FALSE)))[1, 1]),
    per_batch = per_batch(f1)))), "rats_lme4_intervals.json")
