# Reference for lme4's interaction grouping (1 | comm:mom) on mlmRev's guImmun
# (one random intercept per mother, the mothers labelled within their
# communities), small model immun ~ kid2p + rural + pcInd81. A single scalar
# random effect, so lme4 fits it by Laplace (nAGQ = 1) and by 25-node adaptive
# Gauss-Hermite (nAGQ = 25) alike; tight control (common.R). Writes
# pairs_lme4.json. lme4's logLik for nAGQ > 1 omits the saturated constant
# (common.R's saturated_loglik; it is 0 for binary rows).
source(local({a <- commandArgs(FALSE); f <- sub("--file=", "", a[grep("--file=", a)])
  if (length(f)) file.path(dirname(normalizePath(f)), "common.R") else "common.R"}))
suppressPackageStartupMessages(library(mlmRev))

d <- guImmun
formula <- immun ~ kid2p + rural + pcInd81 + (1 | comm:mom)
fit_one <- function(nAGQ) {
  g <- glmer(formula, d, family = binomial, nAGQ = nAGQ, control = tight_control())
  list(nAGQ = nAGQ, beta = as.list(fixef(g)),
       sd = attr(VarCorr(g)[["comm:mom"]], "stddev")[[1]],
       loglik = as.numeric(logLik(g)), n_groups = ngrps(g)[["comm:mom"]],
       messages = g@optinfo$conv$lme4$messages)
}
write_ref(c(list(formula = deparse(formula)), versions(c("lme4", "mlmRev")),
            list(laplace = fit_one(1), agq25 = fit_one(25))), "pairs_lme4.json")
