"""Estimands and intercurrent events (SAP section 11): configuration, derivation inputs of the
imputation engine, and the estimand, tipping-point and check results."""
