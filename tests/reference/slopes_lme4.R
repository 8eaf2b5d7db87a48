# Random slopes: lme4's Laplace fits of real data with a random intercept and
# a random slope per group, the references of skre's n_quad=1 with
# random_slopes (issue 25).
# Run:  cd tests/reference && Rscript slopes_lme4.R
# Writes data/contraception.csv and data/toenail.csv's companion fits into
# slopes_lme4.json:
#  - mlmRev::Contraception (Bangladesh fertility survey, 1934 women in 60
#    districts): use ~ age + I(age^2) + urban + livch + (1 + urban | district),
#    the example of Bates et al.; also the diagonal (1 + urban || district).
#  - HSAUR3::toenail: y ~ treat * time + (1 + time | patient), where lme4's
#    Laplace fit is degenerate (its Hessian has negative eigenvalues): kept to
#    report, not to match.
# Tight optimizer and PIRLS tolerances (tight_control(), common.R): with lme4's
# default tolPwrss = 1e-7 its Laplace deviance of a vector random effect is
# off by up to 1e-3 (measured; glmmTMB agrees with the tight value).
f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
source(file.path(if (length(f) == 1) dirname(f) else ".", "common.R"))
suppressPackageStartupMessages({ library(mlmRev); library(glmmTMB) })

data("Contraception", package = "mlmRev")
C <- Contraception
d <- data.frame(
  district = as.integer(as.character(C$district)),
  use = as.integer(C$use == "Y"),
  age = C$age / 10,  # decades (centred at the mean): lme4 warns of a very large
  # eigenvalue on the raw scale of age^2
  age2 = (C$age / 10)^2,
  urban = as.integer(C$urban == "Y"),
  livch1 = as.integer(C$livch == "1"),
  livch2 = as.integer(C$livch == "2"),
  livch3 = as.integer(C$livch == "3+")
)
dir.create(file.path(REF_DIR, "data"), showWarnings = FALSE)
csv <- file.path(REF_DIR, "data", "contraception.csv")
write.csv(d, csv, row.names = FALSE)
d <- read.csv(csv)

# Newton steps on lme4's own deviance function (central differences), from
# its tight fit: on these data the likelihood is flat to 1e-10 along the age
# coefficient, where bobyqa stops up to 3e-5 (relative) short
polish <- function(formula, data, fit, steps = 3) {
  devf <- glmer(formula, data, binomial, nAGQ = 1, devFunOnly = TRUE,
                control = tight_control())
  x <- c(getME(fit, "theta"), fixef(fit))
  k <- length(x)
  for (s in seq_len(steps)) {
    h <- 1e-4 * pmax(1, abs(x))
    f0 <- devf(x)
    g <- numeric(k); H <- matrix(0, k, k)
    for (i in 1:k) {
      ei <- replace(numeric(k), i, h[i])
      g[i] <- (devf(x + ei) - devf(x - ei)) / (2 * h[i])
      H[i, i] <- (devf(x + ei) - 2 * f0 + devf(x - ei)) / h[i]^2
      if (i > 1) for (j in 1:(i - 1)) {
        ej <- replace(numeric(k), j, h[j])
        H[i, j] <- H[j, i] <- (devf(x + ei + ej) - devf(x + ei - ej) -
          devf(x - ei + ej) + devf(x - ei - ej)) / (4 * h[i] * h[j])
      }
    }
    step <- -solve(H, g)
    if (devf(x + step) < f0) x <- x + step
  }
  nt <- length(getME(fit, "theta"))
  list(theta = x[1:nt], fixef = as.list(x[-(1:nt)]), loglik = -devf(x) / 2)
}

report <- function(fit) {
  vc <- as.data.frame(VarCorr(fit))
  list(
    fixef = as.list(fixef(fit)),
    # lme4's vcov: the inverse of its finite-difference Hessian of the
    # deviance in (theta, beta), the fixed-effect block
    fixef_se = as.list(sqrt(diag(as.matrix(vcov(fit))))),
    varcorr = lapply(vc, function(v) v),
    loglik = as.numeric(logLik(fit)),
    theta = unname(getME(fit, "theta")),
    converged = is.null(fit@optinfo$conv$lme4$messages),
    messages = fit@optinfo$conv$lme4$messages
  )
}
fixed <- "use ~ age + age2 + urban + livch1 + livch2 + livch3"
fits <- list()
for (kind in c("unstructured", "diagonal")) {
  form <- as.formula(paste(fixed, if (kind == "diagonal") "+ (1 + urban || district)"
                                  else "+ (1 + urban | district)"))
  fit <- glmer(form, d, binomial, nAGQ = 1, control = tight_control())
  fits[[kind]] <- c(report(fit), list(polished = polish(form, d, fit)))
}
tmb <- glmmTMB(as.formula(paste(fixed, "+ (1 + urban | district)")), d, binomial)
fits$glmmtmb <- list(
  fixef = as.list(fixef(tmb)$cond),
  sd = unname(attr(VarCorr(tmb)$cond$district, "stddev")),
  corr = attr(VarCorr(tmb)$cond$district, "correlation")[1, 2],
  loglik = as.numeric(logLik(tmb))
)

t <- read.csv(file.path(REF_DIR, "data", "toenail.csv"))
toe <- glmer(y ~ treat * time + (1 + time | patient), t, binomial, nAGQ = 1,
             control = tight_control())
toenail <- report(toe)

write_ref(c(versions(c("lme4", "glmmTMB", "mlmRev", "HSAUR3")), list(
  notes = paste("Laplace (nAGQ = 1) fits, tight_control(); binary rows, so logLik",
                "is on skre's loglik_ scale. varcorr = as.data.frame(VarCorr(fit))."),
  contraception = list(n_rows = nrow(d), n_groups = length(unique(d$district)),
                       fixed = fixed, fits = fits),
  toenail = toenail
)), "slopes_lme4.json")
