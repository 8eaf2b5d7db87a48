# Reference numbers for the rats tumour data (71 batches, m of n rats).
# Run:  cd tests/reference && Rscript rats_lme4.R
# Writes rats_lme4.json (fits) and rats_lme4_intervals.json (CIs, ranef).
# ranef/condVar are read before confint(method = "profile"), which modifies the fit.
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
# Everything read from the fitted objects (fixef, theta, vcov, Wald CI, ranef)
# is read BEFORE confint(method = "profile"). Profiling a glmer fit modifies it
# in place: fit@pp is a mutable reference object, and profiling leaves its
# relative covariance factor Lambdat at the theta of the last profiled point,
# while fit@theta and getME(fit, "theta") still report the MLE. ranef() (= Lambda u)
# and its condVar (postVar), and hence coef(), read after profiling are therefore
# not the conditional modes/SDs of the fitted model. nagq25$profile_side_effect
# below demonstrates this by comparing the same fit before and after profiling.
f25 <- blk$nagq25$fits$tight
f1 <- blk$laplace$fits$tight
ci_list <- function(ci) lapply(split(ci, row(ci)), unname) |> setNames(rownames(ci))
per_batch <- function(fit) {
  re <- ranef(fit, condVar = TRUE)$batch
  list(batch = as.integer(rownames(re)),
       cond_mode = unname(re[, 1]),
       cond_sd = sqrt(unname(attr(re, "postVar")[1, 1, ])),
       coef = unname(coef(fit)$batch[, 1]))
}
# Independent conditional modes and SDs at a fit's (beta, tau), in plain R:
# Newton for the mode u_g of log p(m_g | u) + log phi(u) (spherical u, as in
# marginal_loglik() in common.R); cond_mode = tau * u_g and cond_sd = tau * s_g,
# s_g = 1 / sqrt(tau^2 sum n p (1 - p) + 1), the Gaussian (Laplace) SD at the
# mode, which is what lme4's condVar reports for any nAGQ.
per_batch_independent <- function(fit) {
  beta <- fixef(fit); tau <- unname(getME(fit, "theta"))
  eta0 <- drop(X %*% beta)
  res <- lapply(split(seq_len(nrow(d)), d$batch), function(g) {
    e <- eta0[g]; mm <- d$m[g]; nn <- d$n[g]; u <- 0
    for (it in 1:100) {
      p <- plogis(e + tau * u)
      step <- (tau * sum(mm - nn * p) - u) / (tau^2 * sum(nn * p * (1 - p)) + 1)
      u <- u + step
      if (abs(step) < 1e-14) break
    }
    p <- plogis(e + tau * u)
    c(tau * u, tau / sqrt(tau^2 * sum(nn * p * (1 - p)) + 1))
  })
  list(batch = as.integer(names(res)),
       cond_mode = unname(vapply(res, `[`, 0, 1)),
       cond_sd = unname(vapply(res, `[`, 0, 2)))
}
max_abs <- function(a, b) max(abs(unlist(a) - unlist(b)))
vcovs <- function(fit) list(
  vcov_hessian = unname(as.matrix(vcov(fit))[1, 1]),
  vcov_rx = unname(as.matrix(suppressWarnings(vcov(fit, use.hessian = FALSE)))[1, 1]))
# per_batch block of one fit: tight fit as the reference, default fit and the
# independent plain-R values next to it.
ranef_block <- function(b) {
  tight <- per_batch(b$fits$tight)
  default <- per_batch(b$fits$default)
  ind <- per_batch_independent(b$fits$tight)
  list(per_batch = tight,
       per_batch_default = default,
       per_batch_independent = ind,
       max_abs_diff_cond_mode_default_vs_tight = max_abs(default$cond_mode, tight$cond_mode),
       max_abs_diff_cond_sd_default_vs_tight = max_abs(default$cond_sd, tight$cond_sd),
       max_abs_diff_cond_mode_independent_vs_tight = max_abs(ind$cond_mode, tight$cond_mode),
       max_abs_diff_cond_sd_independent_vs_tight = max_abs(ind$cond_sd, tight$cond_sd))
}

# Read everything before profiling.
state <- function(fit) c(list(fixef = fixef(fit), theta = unname(getME(fit, "theta")),
                              loglik = as.numeric(logLik(fit)),
                              lambdat = unname(getME(fit, "Lambdat")@x[1])),
                         vcovs(fit), per_batch(fit))
re25 <- ranef_block(blk$nagq25)
re1 <- ranef_block(blk$laplace)
v25 <- vcovs(f25); v1 <- vcovs(f1)
wald <- confint(f25, method = "Wald", oldNames = FALSE)
before <- state(f25)

# Exactly what confint(f25, method = "profile", oldNames = FALSE) does (lme4
# 1.1-31), split in two so the profile itself can be inspected below.
pr <- profile(f25, which = 1:2, signames = FALSE)
prof <- confint(pr, level = 0.95)

# ... and after: the same fit object, profiled.
after <- state(f25)
stopifnot(identical(before$fixef, after$fixef), identical(before$theta, after$theta),
          isTRUE(all.equal(after$lambdat,
                           tail(as.data.frame(pr)[["sd_(Intercept)|batch"]], 1))))
profile_side_effect <- list(
  note = paste(
    "Same tight nAGQ=25 fit object read before and after confint(fit, method='profile').",
    "Profiling leaves the fit's mutable predictor module (fit@pp) with Lambdat at a",
    "profiled theta (lambdat_after; equal to tau_at_last_profile_point, the conditional",
    "MLE of tau at the last intercept value profiled) while getME(fit,'theta') still returns the MLE",
    "(theta_after = theta_before). fixef, theta, logLik and vcov are unchanged, but",
    "ranef (= Lambda u), its condVar and coef are not the fitted model's after profiling.",
    "ranef_after_profile is kept only to document this; it is NOT a reference value."),
  theta_before = before$theta, theta_after = after$theta,
  lambdat_before = before$lambdat, lambdat_after = after$lambdat,
  tau_at_last_profile_point = unname(tail(as.data.frame(pr)[["sd_(Intercept)|batch"]], 1)),
  max_abs_change = list(
    fixef = max_abs(before$fixef, after$fixef), theta = max_abs(before$theta, after$theta),
    loglik = max_abs(before$loglik, after$loglik),
    vcov_hessian = max_abs(before$vcov_hessian, after$vcov_hessian),
    vcov_rx = max_abs(before$vcov_rx, after$vcov_rx),
    cond_mode = max_abs(before$cond_mode, after$cond_mode),
    cond_sd = max_abs(before$cond_sd, after$cond_sd),
    coef = max_abs(before$coef, after$coef)),
  max_abs_diff_after_vs_independent = list(
    cond_mode = max_abs(after$cond_mode, re25$per_batch_independent$cond_mode),
    cond_sd = max_abs(after$cond_sd, re25$per_batch_independent$cond_sd)))
ranef_after_profile <- after[c("batch", "cond_mode", "cond_sd", "coef")]

write_ref(c(versions(c("lme4", "Matrix")), list(
  script = "rats_lme4.R",
  notes = paste(
    "All from the tight fits of cbind(m, n-m) ~ 1 + (1|batch).",
    "profile CI: confint(fit, method='profile') (rows: sd_(Intercept)|batch = tau, (Intercept)).",
    "Wald CI: only for fixed effects (tau row is null).",
    "vcov_hessian = vcov(fit) (lme4 default, from the finite-difference Hessian of the",
    "deviance over (theta, beta)); vcov_rx = vcov(fit, use.hessian=FALSE) (conditional on theta;",
    "lme4 warns that the two differ by > 1e-4, which is expected here).",
    "per_batch: ranef(fit, condVar=TRUE) read from the fresh tight fit BEFORE any profiling;",
    "cond_mode = conditional mode of b_g (= tau*u_g); cond_sd = sqrt of postVar, which lme4",
    "computes from the Laplace (Gaussian) approximation at the mode even when nAGQ=25.",
    "coef = fixef + ranef per batch (logit scale).",
    "per_batch_default: the same from the default-tolerance fit (glmerControl()).",
    "per_batch_independent: modes and Gaussian SDs recomputed in plain R (Newton) at the tight",
    "fit's (fixef, theta). nagq25$ranef_after_profile: ranef read from the same fit AFTER",
    "confint(method='profile'), which modifies the fit object (see nagq25$profile_side_effect);",
    "kept for documentation only, not a reference."),
  nagq25 = c(list(
    fixef = as.list(fixef(f25)), tau = unname(getME(f25, "theta")),
    profile_ci_95 = ci_list(prof), wald_ci_95 = ci_list(wald)),
    v25, re25,
    list(ranef_after_profile = ranef_after_profile,
         profile_side_effect = profile_side_effect)),
  laplace = c(list(
    fixef = as.list(fixef(f1)), tau = unname(getME(f1, "theta"))),
    v1, re1))), "rats_lme4_intervals.json")
