# Simulated AGGREGATED counts with a covariate: 40 groups x 3 dose levels.
# Run:  cd tests/reference && Rscript sim_counts.R
# Writes data/sim_counts.csv (group, dose, m, n) and sim_counts.json.
f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
source(file.path(if (length(f) == 1) dirname(f) else ".", "common.R"))  # sets REF_DIR, REPO_ROOT

# --- simulate ---------------------------------------------------------------
RNGkind("Mersenne-Twister", "Inversion", "Rejection")
set.seed(20240602)
G <- 40
d <- expand.grid(dose = c(0, 1, 2), group = seq_len(G))[, c("group", "dose")]
u <- rnorm(G, 0, 0.5)                              # true tau = 0.5
d$n <- sample(5:30, nrow(d), replace = TRUE)
d$m <- rbinom(nrow(d), d$n, plogis(-1 + 0.6 * d$dose + u[d$group]))
d <- d[, c("group", "dose", "m", "n")]
dir.create(file.path(REF_DIR, "data"), showWarnings = FALSE)
csv <- file.path(REF_DIR, "data", "sim_counts.csv")
write.csv(d, csv, row.names = FALSE)

# --- fit on the data as read back from the CSV ------------------------------
d <- read.csv(csv)
X <- model.matrix(~ dose, d)
sat_ll <- saturated_loglik(d$m, d$n)

cp <- glm(cbind(m, n - m) ~ dose, binomial, d)
np <- with_warnings(glm(cbind(m, n - m) ~ 0 + factor(group) + dose, binomial, d))
gm <- tapply(d$m, d$group, sum) / tapply(d$n, d$group, sum)
degenerate <- as.integer(names(gm)[gm %in% c(0, 1)])
blk <- glmer_block(cbind(m, n - m) ~ dose + (1 | group), d, X, d$group, d$m, d$n)

write_ref(c(versions(c("lme4", "Matrix")), list(
  script = "sim_counts.R",
  data = "tests/reference/data/sim_counts.csv",
  simulation = list(seed = 20240602, rng = "Mersenne-Twister/Inversion/Rejection",
                    n_groups = G, n_rows = nrow(d), dose_levels = c(0, 1, 2),
                    n_range = range(d$n),
                    true_beta = list("(Intercept)" = -1, dose = 0.6), true_tau = 0.5,
                    model = "m ~ Binomial(n, plogis(-1 + 0.6*dose + u_g)), u_g ~ N(0, 0.5^2), n ~ U{5..30}"),
  notes = paste(
    "All loglik / loglik_with_constants values are the full binomial log-likelihood INCLUDING",
    "sum(lchoose(n, m)) (given as sum_lchoose). glm logLik: with constants. lme4 Laplace",
    "(nAGQ=1) loglik_lme4: with constants. lme4 nAGQ=25 loglik_lme4: WITHOUT the saturated",
    "log-likelihood sum(dbinom(m, n, m/n, log=TRUE)) (= saturated_loglik, which itself includes",
    "sum_lchoose); loglik_with_constants = loglik_lme4 + saturated_loglik. 'tight' glmer fits",
    "(nloptwrap BOBYQA, xtol_abs=ftol_abs=1e-14, tolPwrss=1e-12) are the references."),
  sum_lchoose = sum(lchoose(d$n, d$m)),
  saturated_loglik = sat_ll,
  complete_pooling = list(formula = "glm(cbind(m, n - m) ~ dose, binomial)",
                          coef = as.list(coef(cp)), se = as.list(sqrt(diag(vcov(cp)))),
                          loglik = as.numeric(logLik(cp)), AIC = AIC(cp), nobs = nobs(cp)),
  no_pooling = list(formula = "glm(cbind(m, n - m) ~ 0 + factor(group) + dose, binomial)",
                    dose = unname(coef(np$value)["dose"]),
                    loglik = as.numeric(logLik(np$value)), df = attr(logLik(np$value), "df"),
                    converged = np$value$converged, r_warnings = np$warnings,
                    groups_all_0_or_all_1 = degenerate),
  glmer = strip_fits(blk))), "sim_counts.json")
