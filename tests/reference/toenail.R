# The toenail data (HSAUR3::toenail; De Backer et al. 1998): 1908 visits of
# 294 patients, outcome "moderate or severe" onycholysis. Issue 22's real data
# set where 25 Gauss-Hermite nodes are not enough (tau ~ 4).
# Run:  cd tests/reference && Rscript toenail.R
# Writes data/toenail.csv (patient, y, treat, time) and toenail.json: lme4's
# Laplace fit and its nAGQ = 25 fit (lme4's largest rule) of
#   y ~ treat * time + (1 | patient)
# with tight tolerances. The exact fit (more nodes than lme4 allows) is
# computed in the tests by an independent quadrature (exact_glmm.py).
f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
source(file.path(if (length(f) == 1) dirname(f) else ".", "common.R"))
suppressPackageStartupMessages(library(HSAUR3))

data("toenail", package = "HSAUR3")
d <- data.frame(
  patient = as.integer(as.character(toenail$patientID)),
  y = as.integer(toenail$outcome == "moderate or severe"),
  treat = as.integer(toenail$treatment == "terbinafine"),
  time = round(toenail$time, 7)
)
dir.create(file.path(REF_DIR, "data"), showWarnings = FALSE)
csv <- file.path(REF_DIR, "data", "toenail.csv")
write.csv(d, csv, row.names = FALSE)
d <- read.csv(csv)

fits <- list()
for (q in c(1, 25)) {
  fit <- glmer(y ~ treat * time + (1 | patient), d, binomial, nAGQ = q,
               control = tight_control())
  fits[[if (q == 1) "laplace" else "nagq25"]] <- list(
    fixef = as.list(fixef(fit)),
    tau = unname(getME(fit, "theta")),
    loglik_lme4 = as.numeric(logLik(fit)),
    # binary rows: the saturated log-likelihood is 0, every logLik is on
    # skre's scale
    loglik_with_constants = as.numeric(logLik(fit)),
    # lme4's variance-component table, column for column (var2 is NA for a
    # variance): what skre's variance_components_ reproduces
    varcorr = lapply(as.data.frame(VarCorr(fit)), function(v) v)
  )
}
write_ref(c(versions(c("lme4", "HSAUR3")), list(
  notes = paste("glmer(y ~ treat * time + (1 | patient), binomial, nAGQ = q,",
                "tight_control()); binary rows, so logLik needs no constant"),
  n_rows = nrow(d), n_groups = length(unique(d$patient)),
  fits = fits
)), "toenail.json")
