int strata_placeholder;
