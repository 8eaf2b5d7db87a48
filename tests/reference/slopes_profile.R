# Profile-likelihood intervals of a random-slope Laplace fit, the references of
# skre's confint(method="profile") with random_slopes and n_quad=1 (issue 25).
# Run:  cd tests/reference && Rscript slopes_profile.R   (about 5 minutes)
# Needs data/contraception.csv (written by slopes_lme4.R).
#
# mlmRev::Contraception, use ~ age + age2 + urban + livch1 + livch2 + livch3 +
# (1 + urban | district) at nAGQ = 1 (lme4's Laplace deviance, tight PIRLS).
# Each end is located on lme4's own deviance function (devFunOnly), not by
# lme4's profile(), whose ends are spline interpolations: for each value v of
# the profiled quantity the deviance is minimised over everything else
# (bobyqa, tight), and uniroot finds where it exceeds the minimum by
# qchisq(0.95, 1). The SD of urban's slope, sqrt(L21^2 + L22^2) in lme4's
# theta = (L11, L21, L22), is held by the polar form L21 = s cos(phi), L22 =
# s sin(phi) (another parametrization than skre's, which reorders the
# effects). lme4's confint(method = "profile") is recorded beside them.
f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
source(file.path(if (length(f) == 1) dirname(f) else ".", "common.R"))
suppressPackageStartupMessages(library(minqa))

d <- read.csv(file.path(REF_DIR, "data", "contraception.csv"))
form <- use ~ age + age2 + urban + livch1 + livch2 + livch3 + (1 + urban | district)
fit <- glmer(form, d, binomial, nAGQ = 1, control = tight_control())
devf <- glmer(form, d, binomial, nAGQ = 1, devFunOnly = TRUE,
              control = tight_control())
x_hat <- c(getME(fit, "theta"), fixef(fit))
# the minimum, polished from lme4's fit
opt <- bobyqa(x_hat, devf, lower = c(0, -Inf, 0, rep(-Inf, 7)),
              control = list(rhobeg = 1e-3, rhoend = 1e-12, maxfun = 1e5))
x_hat <- opt$par
d_min <- opt$fval
cut <- qchisq(0.95, 1)

# the deviance minimised with the profiled quantity held at v:
# to_full(v, z) maps v and the free coordinates z to (theta, beta)
constrained <- function(to_full, z0) {
  function(v) {
    o <- bobyqa(z0, function(z) devf(to_full(v, z)),
                control = list(rhobeg = 1e-2, rhoend = 1e-10, maxfun = 1e5))
    o$fval - d_min - cut
  }
}
ends <- function(g, v_hat, step) {
  lo <- v_hat - step; hi <- v_hat + step
  while (g(hi) < 0) hi <- hi + step
  while (g(lo) < 0) lo <- lo - step
  c(uniroot(g, c(lo, v_hat), tol = 1e-9)$root,
    uniroot(g, c(v_hat, hi), tol = 1e-9)$root)
}
ends_sd <- function(g, v_hat, step) {
  hi <- v_hat + step
  while (g(hi) < 0) hi <- hi + step
  lower <- if (g(0) <= 0) 0 else uniroot(g, c(0, v_hat), tol = 1e-9)$root
  c(lower, uniroot(g, c(v_hat, hi), tol = 1e-9)$root)
}

out <- list()
# SD of the intercept: theta[1]
g <- constrained(function(v, z) c(v, z), x_hat[-1])
out$sd_intercept <- ends_sd(g, x_hat[1], 0.3)
# SD of urban's slope: (theta[2], theta[3]) = s (cos phi, sin phi)
s_hat <- sqrt(x_hat[2]^2 + x_hat[3]^2)
phi_hat <- atan2(x_hat[3], x_hat[2])
g <- constrained(function(v, z) c(z[1], v * cos(z[2]), v * sin(z[2]), z[-(1:2)]),
                 c(x_hat[1], phi_hat, x_hat[-(1:3)]))
out$sd_urban <- ends_sd(g, s_hat, 0.3)
# fixed effects: urban and age (their coordinates of beta)
for (name in c("urban", "age")) {
  k <- 3 + which(names(fixef(fit)) == name)
  g <- constrained(function(v, z) append(z, v, after = k - 1), x_hat[-k])
  out[[name]] <- ends(g, x_hat[k], 0.3)
}
lme4_profile <- confint(fit, method = "profile", level = 0.95)

write_ref(c(versions(c("lme4", "minqa")), list(
  notes = paste("95% profile intervals of the Laplace fit, located on lme4's",
                "deviance function (see the script); lme4_profile is",
                "confint(fit, method = 'profile') as lme4 gives it (spline ends)."),
  formula = deparse(form),
  estimate = list(theta = x_hat[1:3], fixef = as.list(x_hat[-(1:3)]),
                  loglik = -d_min / 2),
  profile = out,
  lme4_profile = list(rows = rownames(lme4_profile),
                      lower = unname(lme4_profile[, 1]),
                      upper = unname(lme4_profile[, 2]))
)), "slopes_profile.json")
