module github.com/strata-nri/strata

go 1.25.0
