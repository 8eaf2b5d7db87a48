# Profile-likelihood intervals for the first 40 rats batches (issue 22, item 6):
# an interior fit (tau_hat = 0.289) whose tau profile reaches tau = 0 before
# the chi2 cutoff, so the lower end of tau's interval is 0.
# Run:  cd tests/reference && Rscript rats40_profile.R   -> rats40_profile.json
# Two independent computations:
#  1. lme4: confint(glmer(..., nAGQ = 25, tight control), method = "profile")
#  2. a brute-force profile in plain R: the marginal log-likelihood from
#     common.R's marginal_loglik (25-node adaptive Gauss-Hermite, the same rule
#     as nAGQ = 25), maximised over the nuisance parameter by optimize() for
#     each value of the profiled one, and the ends found by uniroot().
f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
source(file.path(if (length(f) == 1) dirname(f) else ".", "common.R"))

d <- read.csv(file.path(REPO_ROOT, "skre", "datasets", "data", "rats.csv"))[1:40, ]
X <- matrix(1, nrow(d), 1, dimnames = list(NULL, "(Intercept)"))
fit <- glmer(cbind(m, n - m) ~ 1 + (1 | batch), data = d, family = binomial,
             nAGQ = 25, control = tight_control())
b_hat <- unname(fixef(fit)); tau_hat <- unname(getME(fit, "theta"))
ll_hat <- as.numeric(logLik(fit)) + saturated_loglik(d$m, d$n)
prof <- suppressWarnings(confint(fit, method = "profile", oldNames = FALSE, level = 0.95))

# brute force (level 0.95): the set where 2 (ll_max - profile) <= qchisq(0.95, 1)
ll <- function(b, tau) marginal_loglik(b, tau, X, d$batch, d$m, d$n, "agq", 25)
cut <- qchisq(0.95, 1) / 2
opt <- optim(c(b_hat, tau_hat), function(p) -ll(p[1], abs(p[2])), method = "Nelder-Mead",
             control = list(reltol = 1e-14, maxit = 5000))
ll_max <- -opt$value
prof_b <- function(b) optimize(function(t) ll(b, t), c(0, 5), maximum = TRUE, tol = 1e-10)$objective
prof_tau <- function(t) optimize(function(b) ll(b, t), c(-6, 1), maximum = TRUE, tol = 1e-10)$objective
g_b <- function(b) ll_max - prof_b(b) - cut
g_tau <- function(t) ll_max - prof_tau(t) - cut
b_lo <- uniroot(g_b, c(b_hat - 2, b_hat), tol = 1e-10)$root
b_hi <- uniroot(g_b, c(b_hat, b_hat + 2), tol = 1e-10)$root
tau_hi <- uniroot(g_tau, c(tau_hat, 3), tol = 1e-10)$root
rise_at_tau0 <- ll_max - prof_tau(0)   # below cut: tau's interval starts at 0

write_ref(c(versions(c("lme4", "Matrix")), list(
  script = "rats40_profile.R",
  data = "skre/datasets/data/rats.csv, rows 1-40",
  fixef = b_hat, tau = tau_hat, loglik_with_constants = ll_hat,
  lme4_profile_ci_95 = list(intercept = unname(prof["(Intercept)", ]),
                            tau = unname(prof["sd_(Intercept)|batch", ])),
  brute_force = list(loglik_max = ll_max, b = opt$par[1], tau = abs(opt$par[2]),
                     intercept = c(b_lo, b_hi), tau_upper = tau_hi,
                     rise_at_tau0 = rise_at_tau0, cutoff = cut),
  notes = paste("lme4's profile CI (tight nAGQ = 25 fit) and a brute-force profile of",
                "common.R's 25-node AGQ marginal log-likelihood (optimize over the nuisance",
                "parameter, uniroot for the ends). rise_at_tau0 < cutoff, so tau's interval",
                "starts at 0."))), "rats40_profile.json")
