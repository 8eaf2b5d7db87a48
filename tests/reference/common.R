# Shared helpers for the reference scripts in tests/reference/.
# Sourced by rats_lme4.R, rats_blme.R, sim_*.R.  Run those from this directory:
#   cd tests/reference && Rscript rats_lme4.R
suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

# Directory holding the running script (Rscript --file=...), else the cwd.
script_dir <- function() {
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f) == 1) dirname(normalizePath(f)) else getwd()
}
REF_DIR <- script_dir()
REPO_ROOT <- normalizePath(file.path(REF_DIR, "..", ".."))

versions <- function(pkgs = c("lme4")) {
  v <- list(r_version = R.version.string)
  for (p in pkgs) v[[paste0(tolower(p), "_version")]] <- as.character(packageVersion(p))
  v
}

write_ref <- function(x, file) {
  jsonlite::write_json(x, file.path(REF_DIR, file), digits = NA,
                       auto_unbox = TRUE, pretty = TRUE, na = "null")
  cat("wrote", file.path(REF_DIR, file), "\n")
}

# Tight optimizer settings: nloptwrap (NLOPT_LN_BOBYQA) for both stages with
# absolute x/f tolerances 1e-14, and a tight PIRLS tolerance.  (minqa::bobyqa
# with rhoend = 1e-12 stopped up to ~3e-6 short on the badly scaled
# sim_binary problem; this setting agrees with a rescaled refit to ~2e-7.)
# The "default" fits use glmerControl() unchanged.
tight_control <- function() {
  glmerControl(optimizer = "nloptwrap",
               optCtrl = list(algorithm = "NLOPT_LN_BOBYQA", xtol_abs = 1e-14,
                              ftol_abs = 1e-14, xtol_rel = 0, ftol_rel = 0,
                              maxeval = 1e5),
               tolPwrss = 1e-12)
}

# Constant dropped by lme4 for nAGQ > 1: lme4 then integrates the *deviance
# residuals*, so its logLik is log L - log L_saturated, where
# log L_saturated = sum dbinom(m, n, m/n, log = TRUE) (includes lchoose(n, m)).
saturated_loglik <- function(m, n) sum(dbinom(m, n, ifelse(n > 0, m / n, 0), log = TRUE))

# ---------------------------------------------------------------------------
# Independent marginal log-likelihood (binomial constants included) of a
# random-intercept logistic model at (beta, tau), computed group by group:
#   L_g = int prod_i Binom(m_i | n_i, plogis(x_i'beta + tau*u)) phi(u) du
# method = "laplace" (nAGQ = 1), "agq" (adaptive Gauss-Hermite, lme4 rule),
#          "exact" (stats::integrate, tolerance ~1e-10).
# Uses spherical u (b = tau*u), mode by Newton, exactly like lme4's PIRLS.
# ---------------------------------------------------------------------------
marginal_loglik <- function(beta, tau, X, group, m, n,
                            method = c("agq", "laplace", "exact"), nAGQ = 25) {
  method <- match.arg(method)
  eta0 <- drop(X %*% beta)
  gh <- if (method == "agq") GHrule(nAGQ) else GHrule(1)
  total <- 0
  for (g in split(seq_along(m), group)) {
    e <- eta0[g]; mm <- m[g]; nn <- n[g]
    f <- function(u) sum(dbinom(mm, nn, plogis(e + tau * u), log = TRUE)) + dnorm(u, log = TRUE)
    u <- 0
    for (it in 1:100) {                    # Newton for the mode of f
      p <- plogis(e + tau * u)
      grad <- tau * sum(mm - nn * p) - u
      hess <- -tau^2 * sum(nn * p * (1 - p)) - 1
      step <- -grad / hess
      u <- u + step
      if (abs(step) < 1e-14) break
    }
    p <- plogis(e + tau * u)
    s <- 1 / sqrt(tau^2 * sum(nn * p * (1 - p)) + 1)  # conditional sd of u
    if (method == "exact") {
      fu <- f(u)
      h <- function(z) sapply(z, function(zz) exp(f(u + s * zz) - fu))
      I <- integrate(h, -Inf, Inf, rel.tol = 1e-12, abs.tol = 0)$value
      total <- total + fu + log(s) + log(I)
    } else {
      z <- gh[, "z"]; w <- gh[, "w"]
      vals <- sapply(u + s * z, f) - dnorm(z, log = TRUE)
      mx <- max(vals)
      total <- total + log(s) + mx + log(sum(w * exp(vals - mx)))
    }
  }
  total
}

# Summary of a glmer / bglmer fit.  loglik_const_dropped is what has to be added
# to lme4's logLik to get the log-likelihood with binomial constants.
glmer_summary <- function(fit, X, group, m, n) {
  nagq <- fit@devcomp$dims[["nAGQ"]]
  tau <- unname(getME(fit, "theta"))
  b <- fixef(fit)
  ll <- as.numeric(logLik(fit))
  dropped <- if (nagq > 1) saturated_loglik(m, n) else 0
  derivs <- fit@optinfo$derivs
  list(
    nAGQ = nagq,
    optimizer = fit@optinfo$optimizer,
    fixef = as.list(b),
    tau = tau,
    tau_sq = tau^2,
    loglik_lme4 = ll,
    loglik_constant_dropped_by_lme4 = dropped,
    loglik_with_constants = ll + dropped,
    loglik_with_constants_independent =
      marginal_loglik(b, tau, X, group, m, n,
                      if (nagq > 1) "agq" else "laplace", max(nagq, 1)),
    loglik_exact_integral =
      marginal_loglik(b, tau, X, group, m, n, "exact"),
    deviance_lme4 = deviance(fit),
    AIC_lme4 = AIC(fit), BIC_lme4 = BIC(fit),
    AIC_with_constants = -2 * (ll + dropped) + 2 * attr(logLik(fit), "df"),
    BIC_with_constants = -2 * (ll + dropped) + log(nobs(fit)) * attr(logLik(fit), "df"),
    df = attr(logLik(fit), "df"),
    nobs = nobs(fit),
    ngroups = unname(ngrps(fit)),
    is_singular = isSingular(fit, tol = 1e-4),
    fixef_se = as.list(sqrt(diag(as.matrix(vcov(fit))))),
    optimizer_convergence_code = fit@optinfo$conv$opt,
    optimizer_message = if (is.null(fit@optinfo$message)) "" else fit@optinfo$message,
    lme4_messages = as.list(unlist(fit@optinfo$conv$lme4$messages)),
    warnings = as.list(unlist(lapply(fit@optinfo$warnings, as.character))),
    feval = fit@optinfo$feval,
    max_abs_gradient = if (is.null(derivs)) NA else max(abs(derivs$gradient))
  )
}

# Max abs difference between the default and tight fits (fixef, tau, logLik).
fit_diff <- function(a, b) {
  max(abs(c(unlist(a$fixef) - unlist(b$fixef), a$tau - b$tau,
            a$loglik_lme4 - b$loglik_lme4)))
}

# Independent maximisation of marginal_loglik (nlminb, tau >= 0), started from
# a point perturbed away from the lme4 estimate (beta + 0.1, tau + 0.1); a
# cross-check that the lme4 optimum is tight.  (The objective is flat near the
# optimum: expect agreement of parameters to ~1e-6, of logLik to ~1e-10.)
# objective = loglik_with_constants (+ log_prior(tau) if given) at the optimum.
# log_prior(tau) is added to the objective (used for blme's penalised fit).
independent_fit <- function(start_beta, start_tau, X, group, m, n, method, nAGQ,
                            log_prior = function(tau) 0) {
  start_beta <- start_beta + 0.1; start_tau <- start_tau + 0.1
  obj <- function(p) -marginal_loglik(p[-length(p)], p[length(p)], X, group, m, n, method, nAGQ) -
    log_prior(p[length(p)])
  k <- length(start_beta)
  o <- nlminb(c(start_beta, start_tau), obj, lower = c(rep(-Inf, k), 0),
              control = list(rel.tol = 1e-15, x.tol = 1e-12, eval.max = 2000, iter.max = 1000))
  list(beta = as.list(setNames(o$par[1:k], names(start_beta))), tau = unname(o$par[k + 1]),
       objective = -o$objective, nlminb_message = o$message)
}

# Evaluate expr, collecting (and muffling) its warnings; messages (e.g. lme4's
# "boundary (singular) fit") are muffled too; they are kept in lme4_messages.
with_warnings <- function(expr) {
  w <- character(0)
  value <- withCallingHandlers(expr, warning = function(cond) {
    w <<- c(w, conditionMessage(cond)); invokeRestart("muffleWarning")
  }, message = function(cond) invokeRestart("muffleMessage"))
  list(value = value, warnings = as.list(w))
}

# Fit default + tight glmer (nAGQ = 1 and 25) for a formula; returns a list.
# fitfun = blme::bglmer with its log_prior gives the penalised (blme) fits.
glmer_block <- function(formula, data, X, group, m, n, agqs = c(1, 25),
                        fitfun = glmer, log_prior = function(tau) 0) {
  out <- list()
  for (q in agqs) {
    key <- if (q == 1) "laplace" else paste0("nagq", q)
    fd <- with_warnings(fitfun(formula, data, binomial, nAGQ = q))
    ft <- with_warnings(fitfun(formula, data, binomial, nAGQ = q, control = tight_control()))
    sd <- c(glmer_summary(fd$value, X, group, m, n), list(r_warnings = fd$warnings))
    st <- c(glmer_summary(ft$value, X, group, m, n), list(r_warnings = ft$warnings))
    fd <- fd$value; ft <- ft$value
    ind <- independent_fit(fixef(ft), unname(getME(ft, "theta")), X, group, m, n,
                           if (q == 1) "laplace" else "agq", q, log_prior)
    out[[key]] <- list(default = sd, tight = st,
                       max_abs_diff_default_vs_tight = fit_diff(sd, st),
                       independent_nlminb = ind,
                       fits = list(default = fd, tight = ft))
  }
  out
}
strip_fits <- function(block) lapply(block, function(b) { b$fits <- NULL; b })
