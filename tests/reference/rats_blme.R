# blme::bglmer (penalised / MAP) fits of the rats data with blme's default
# covariance prior.  Run:  cd tests/reference && Rscript rats_blme.R
f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
source(file.path(if (length(f) == 1) dirname(f) else ".", "common.R"))  # sets REF_DIR, REPO_ROOT
suppressPackageStartupMessages(library(blme))

d <- read.csv(file.path(REPO_ROOT, "skre", "datasets", "data", "rats.csv"))
X <- matrix(1, nrow(d), 1, dimnames = list(NULL, "(Intercept)"))

# Default prior for a scalar random effect: wishart(df = level.dim + 2.5 = 3.5,
# scale = Inf) on tau^2.  Its prior deviance (fit@devcomp$cmp["penalty"]) is
# -2 * 0.75 * log(tau^2) = -3 log(tau): i.e. blme maximises
#   log L(beta, tau) + 1.5 * log(tau)
# which is the same as a gamma(shape = 2.5, rate = 0) prior on tau.
log_prior <- function(tau) 1.5 * log(tau)

form <- cbind(m, n - m) ~ 1 + (1 | batch)
blk <- glmer_block(form, d, X, d$batch, d$m, d$n, fitfun = bglmer, log_prior = log_prior)

prior_info <- function(fit) {
  p <- fit@priors$covPriors[[1]]
  list(printed = trimws(grep("^Cov prior", capture.output(print(fit)), value = TRUE)),
       class = class(p)[1], df = p@df, R_scale_inv = as.numeric(p@R.scale.inv),
       log_det_scale = format(p@log.det.scale), posterior_scale = p@posteriorScale,
       common_scale = p@commonScale,
       penalty_lme4 = unname(fit@devcomp$cmp["penalty"]),
       penalty_check_minus3logtau = -3 * log(unname(getME(fit, "theta"))))
}
for (k in names(blk)) {
  ft <- blk[[k]]$fits$tight
  blk[[k]]$prior <- prior_info(ft)
  blk[[k]]$tight$log_posterior_with_constants <-
    blk[[k]]$tight$loglik_with_constants + log_prior(unname(getME(ft, "theta")))
}

write_ref(c(versions(c("lme4", "blme", "Matrix")), list(
  script = "rats_blme.R",
  data = "skre/datasets/data/rats.csv",
  formula = "bglmer(cbind(m, n - m) ~ 1 + (1 | batch), family = binomial) [default cov.prior = wishart]",
  notes = paste(
    "tau and fixef are the penalised (MAP-type) estimates.",
    "loglik_lme4 = logLik(fit): the UNPENALISED log-likelihood at those estimates, in lme4's",
    "convention (Laplace: with binomial constants; nAGQ>1: minus saturated_loglik, see",
    "rats_lme4.json notes). loglik_with_constants adds back the dropped constant.",
    "The maximised objective is loglik_with_constants + 1.5*log(tau)",
    "(log_posterior_with_constants; blme's prior deviance = -3*log(tau), no normalising constant).",
    "independent_nlminb maximises that same objective in plain R; its 'objective' is the",
    "log-posterior with constants. 'tight' = nloptwrap BOBYQA, xtol_abs=ftol_abs=1e-14, tolPwrss=1e-12."),
  saturated_loglik = saturated_loglik(d$m, d$n),
  bglmer = strip_fits(blk))), "rats_blme.json")
