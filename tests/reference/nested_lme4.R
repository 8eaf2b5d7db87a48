# Reference for two-level nested random intercepts, (1 | comm/mom), on
# mlmRev's guImmun (Guatemalan child immunization: 2159 children of 1595
# mothers in 161 communities). Writes data/guImmun.csv (the model matrix,
# immun, comm, mom) and nested_lme4.json.
#
# lme4's own glmer(nAGQ = 1) stops with max|grad| 0.33 here (Nelder-Mead), so
# the Laplace optimum is located on lme4's own objective: glmer(devFunOnly =
# TRUE) (the Laplace deviance as a function of (theta, beta)), minimized by
# minqa's bobyqa from glmer's estimate with rhoend 1e-12, then polished by
# Newton steps on a finite-difference Hessian. A smaller model (kid2p, rural,
# pcInd81) is fitted the same way; for it glmer's own fit converges as well.
# glmmTMB's Laplace fit of each model is kept too (a second, independent
# Laplace implementation).
suppressPackageStartupMessages({library(lme4); library(mlmRev); library(minqa);
  library(jsonlite); library(glmmTMB)})

here <- local({a <- commandArgs(FALSE); f <- sub("--file=", "", a[grep("--file=", a)])
  if (length(f)) dirname(normalizePath(f)) else "."})

d <- guImmun
X <- model.matrix(~ kid2p + mom25p + ord + ethn + momEd + husEd + momWork + rural +
                    pcInd81, d)
out <- data.frame(comm = as.character(d$comm), mom = as.character(d$mom),
                  immun = as.integer(d$immun == "Y"), X[, -1], check.names = FALSE)
write.csv(out, file.path(here, "data", "guImmun.csv"), row.names = FALSE)

polish <- function(dev, par, lower) {
  # Newton steps on central differences of lme4's deviance (bounds inactive)
  grad <- function(p) sapply(seq_along(p), function(k) {
    h <- 1e-5 * max(1, abs(p[k])); e <- replace(numeric(length(p)), k, h)
    (dev(p + e) - dev(p - e)) / (2 * h)})
  for (it in 1:4) {
    g <- grad(par)
    H <- sapply(seq_along(par), function(k) {
      h <- 1e-4 * max(1, abs(par[k])); e <- replace(numeric(length(par)), k, h)
      (grad(par + e) - grad(par - e)) / (2 * h)})
    H <- (H + t(H)) / 2
    step <- solve(H, g)
    if (dev(par - step) < dev(par)) par <- par - step
  }
  list(par = par, grad = grad(par))
}

tmb <- function(formula) {
  f <- glmmTMB(formula, d, family = binomial,
               control = glmmTMBControl(optCtrl = list(rel.tol = 1e-14)))
  vc <- VarCorr(f)$cond
  list(beta = as.list(fixef(f)$cond), sd_inner = attr(vc[["mom:comm"]], "stddev")[[1]],
       sd_outer = attr(vc[["comm"]], "stddev")[[1]], loglik = as.numeric(logLik(f)),
       convergence = f$fit$convergence)
}

fit_one <- function(formula) {
  g <- suppressWarnings(glmer(formula, d, family = binomial, nAGQ = 1))
  # PIRLS to 1e-14: at its default 1e-7, and even at 1e-12, lme4's Laplace
  # deviance of the small model is off by 1e-4 (5e-5 in the log-likelihood)
  dev <- glmer(formula, d, family = binomial, nAGQ = 1, devFunOnly = TRUE,
               control = glmerControl(tolPwrss = 1e-14))
  nth <- length(getME(g, "theta"))
  start <- c(getME(g, "theta"), fixef(g))
  lower <- c(rep(0, nth), rep(-Inf, length(fixef(g))))
  o <- bobyqa(start, dev, lower = lower,
              control = list(rhobeg = 0.02, rhoend = 1e-12, maxfun = 1e5))
  p <- polish(dev, o$par, lower)
  th <- p$par[1:nth]; beta <- p$par[-(1:nth)]
  # the SDs: theta is (mom:comm, comm) in lme4's order of terms
  names(th) <- names(getME(g, "theta"))
  list(formula = deparse(formula, width.cutoff = 500L),
       beta = setNames(as.list(beta), names(fixef(g))),
       sd_inner = th[[1]], sd_outer = th[[2]],
       loglik = -dev(p$par) / 2, max_abs_grad = max(abs(p$grad)),
       glmer_loglik = as.numeric(logLik(g)),
       tmb = tmb(formula),
       glmer_sd = unname(getME(g, "theta")),
       glmer_messages = paste(g@optinfo$conv$lme4$messages, collapse = "; "))
}

res <- list(
  full = fit_one(immun ~ kid2p + mom25p + ord + ethn + momEd + husEd + momWork +
                   rural + pcInd81 + (1 | comm/mom)),
  small = fit_one(immun ~ kid2p + rural + pcInd81 + (1 | comm/mom)),
  R = R.version.string, lme4 = as.character(packageVersion("lme4")),
  glmmTMB = as.character(packageVersion("glmmTMB")))
writeLines(toJSON(res, digits = I(15), auto_unbox = TRUE, pretty = TRUE),
           file.path(here, "nested_lme4.json"))
