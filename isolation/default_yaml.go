package isolation

import _ "embed"

// DefaultConfigYAML is the default configuration written out in full with
// a comment on every field: what `strata config` prints and the reference
// operators start from. A test checks that it parses to exactly
// DefaultConfig, so the two cannot drift.
//
//go:embed default.yaml
var DefaultConfigYAML []byte
