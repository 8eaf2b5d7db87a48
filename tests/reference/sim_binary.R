# Simulated BINARY rows with two covariates on very different scales.
# Run:  cd tests/reference && Rscript sim_binary.R
# Writes data/sim_binary.csv (group, x1, x2, y) and sim_binary.json.
f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
source(file.path(if (length(f) == 1) dirname(f) else ".", "common.R"))  # sets REF_DIR, REPO_ROOT

# --- simulate ---------------------------------------------------------------
RNGkind("Mersenne-Twister", "Inversion", "Rejection")
set.seed(20240601)
G <- 60
sizes <- sample(5:40, G, replace = TRUE)
group <- rep(seq_len(G), sizes)
u <- rnorm(G, 0, 0.7)                          # true tau = 0.7
x1 <- round(rnorm(length(group)), 6)           # N(0, 1)
x2 <- round(runif(length(group), 20, 80), 2)   # "age in years"
y <- rbinom(length(group), 1, plogis(-0.5 + 0.8 * x1 + 0.02 * x2 + u[group]))
dir.create(file.path(REF_DIR, "data"), showWarnings = FALSE)
csv <- file.path(REF_DIR, "data", "sim_binary.csv")
write.csv(data.frame(group, x1, x2, y), csv, row.names = FALSE)

# --- fit on the data as read back from the CSV ------------------------------
d <- read.csv(csv)
X <- model.matrix(~ x1 + x2, d)
grp_mean <- tapply(d$y, d$group, mean)
degenerate <- as.integer(names(grp_mean)[grp_mean %in% c(0, 1)])

cp <- glm(y ~ x1 + x2, binomial, d)
np <- with_warnings(glm(y ~ 0 + factor(group) + x1 + x2, binomial, d))
np_coef <- coef(np$value)
blk <- glmer_block(y ~ x1 + x2 + (1 | group), d, X, d$group, d$y, rep(1, nrow(d)))

# Cross-check of the unscaled fit: refit with x2 centred/scaled, transform back.
d$x2s <- (d$x2 - 50) / 10
cross <- list()
for (q in c(1, 25)) {
  fs <- glmer(y ~ x1 + x2s + (1 | group), d, binomial, nAGQ = q, control = tight_control())
  b <- fixef(fs)
  cross[[if (q == 1) "laplace" else "nagq25"]] <- list(
    fixef = list("(Intercept)" = unname(b[1] - 5 * b[3]), x1 = unname(b[2]), x2 = unname(b[3] / 10)),
    tau = unname(getME(fs, "theta")), loglik_lme4 = as.numeric(logLik(fs)))
}

write_ref(c(versions(c("lme4", "Matrix")), list(
  script = "sim_binary.R",
  data = "tests/reference/data/sim_binary.csv",
  simulation = list(seed = 20240601, rng = "Mersenne-Twister/Inversion/Rejection",
                    n_groups = G, n_rows = nrow(d), group_size_range = range(sizes),
                    true_beta = list("(Intercept)" = -0.5, x1 = 0.8, x2 = 0.02), true_tau = 0.7,
                    model = "y ~ Bernoulli(plogis(-0.5 + 0.8*x1 + 0.02*x2 + u_g)), u_g ~ N(0, 0.7^2); x1 ~ N(0,1) rounded 1e-6, x2 ~ U(20,80) rounded 0.01"),
  notes = paste(
    "Binary rows (n = 1): binomial constants lchoose(1, y) = 0 and the saturated log-likelihood",
    "is 0, so every logLik here (glm, lme4 Laplace, lme4 nAGQ=25) is already 'with constants'",
    "and loglik_lme4 == loglik_with_constants. 'tight' glmer fits (nloptwrap BOBYQA,",
    "xtol_abs=ftol_abs=1e-14, tolPwrss=1e-12) are the references. scaled_cross_check refits with x2s = (x2-50)/10 and",
    "maps the coefficients back to the x2 scale. r_warnings lists R warnings raised by each fit."),
  complete_pooling = list(formula = "glm(y ~ x1 + x2, binomial)",
                          coef = as.list(coef(cp)), se = as.list(sqrt(diag(vcov(cp)))),
                          loglik = as.numeric(logLik(cp)), AIC = AIC(cp), nobs = nobs(cp)),
  no_pooling = list(formula = "glm(y ~ 0 + factor(group) + x1 + x2, binomial)",
                    x1 = unname(np_coef["x1"]), x2 = unname(np_coef["x2"]),
                    loglik = as.numeric(logLik(np$value)), df = attr(logLik(np$value), "df"),
                    converged = np$value$converged, r_warnings = np$warnings,
                    groups_all_0_or_all_1 = degenerate,
                    group_coefs_of_those = unname(np_coef[paste0("factor(group)", degenerate)]),
                    note = paste("Groups whose outcomes are all 0 or all 1 have no finite MLE for",
                                 "their group coefficient; glm stops at a huge |coef| (listed), so",
                                 "x1, x2 and logLik are at glm's convergence point.")),
  glmer = strip_fits(blk),
  scaled_cross_check = cross)), "sim_binary.json")
