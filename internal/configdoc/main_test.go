package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// docs/configuration.md is what the code says: every real field is in it
// with its default and description, and nothing else is.
func TestConfigurationReferenceUpToDate(t *testing.T) {
	want, err := Generate("../../isolation")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("docs/configuration.md is stale: run `go run ./internal/configdoc -w` and commit it\n(first difference near byte %d)", firstDiff(got, want))
	}
}

// Every leaf field of the configuration has a description: a field
// without a comment would reach the reference with an empty cell.
func TestEveryFieldDocumented(t *testing.T) {
	docs, err := fieldDocs("../../isolation")
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, f := range Fields(docs) {
		if f.Doc == "" && !selfExplained[f.Path] {
			missing = append(missing, f.Path)
		}
	}
	if len(missing) > 0 {
		t.Errorf("configuration fields without a doc comment in package isolation:\n  %s", strings.Join(missing, "\n  "))
	}
}

// Fields whose meaning is their parent's comment (a band's bounds, a
// window's ends).
var selfExplained = map[string]bool{}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
