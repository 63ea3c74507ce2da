package main

import (
	"fmt"
	"io"

	"github.com/strata-nri/strata/isolation"
)

func configCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("config", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	switch fs.NArg() {
	case 0:
		// The commented reference, not a bare marshal: operators copy it.
		_, err := stdout.Write(isolation.DefaultConfigYAML)
		return err
	}
	if fs.Arg(0) != "validate" {
		fmt.Fprintf(stderr, "strata config: unknown subcommand %q (want: validate FILE...)\n", fs.Arg(0))
		return errUsage
	}
	files := fs.Args()[1:]
	if len(files) == 0 {
		fmt.Fprintln(stderr, "strata config validate: name at least one file")
		return errUsage
	}
	bad := 0
	for _, f := range files {
		if _, err := isolation.LoadConfig(f); err != nil {
			bad++
			// LoadConfig joins every problem it finds, one per line,
			// each with its field path and allowed values.
			fmt.Fprintf(stdout, "%s: invalid\n%s\n", f, indent(err.Error()))
			continue
		}
		fmt.Fprintf(stdout, "%s: valid\n", f)
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d configuration files invalid", bad, len(files))
	}
	return nil
}

func indent(s string) string {
	out := []byte("  ")
	for i := 0; i < len(s); i++ {
		out = append(out, s[i])
		if s[i] == '\n' && i+1 < len(s) {
			out = append(out, ' ', ' ')
		}
	}
	return string(out)
}
