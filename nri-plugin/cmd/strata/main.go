// Command strata is Strata's containerd NRI plugin. It only wires parts
// together: configuration, the NRI connection, the pool controller, the
// HTTP endpoints. See package nriplugin.
//
//	strata run             [flags]  connect to the runtime and manage pools
//	strata status          [flags]  print pools and members of a running plugin
//	strata config                   print the documented default configuration
//	strata config validate FILE...  check configuration files without running
//	strata version         [--json] print version, commit, Go and NRI versions
//	strata help            [COMMAND]
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	// The batch watermark schedule names a time zone; minimal hosts and
	// container images may have no zoneinfo.
	_ "time/tzdata"
)

// command is one subcommand: its one-line summary, usage and body.
type command struct {
	name, summary, usage string
	run                  func(args []string, stdout, stderr io.Writer) error
}

var commands []command

func init() {
	commands = []command{
		{"run", "connect to the runtime and manage pools (the default)", "strata run [flags]", runCmd},
		{"status", "print pools and members of a running plugin", "strata status [--addr ADDR] [--json] [--watch [--interval D]]", statusCmd},
		{"config", "print the default configuration, or validate files", "strata config\n       strata config validate FILE...", configCmd},
		{"version", "print version, commit, Go and NRI library versions", "strata version [--json]", versionCmd},
		{"help", "show help for a command", "strata help [COMMAND]", helpCmd},
	}
}

// errUsage marks an error whose message already told the user what to do;
// it exits 2 like flag's own errors.
var errUsage = errors.New("usage")

func main() { os.Exit(mainWith(os.Args[1:], os.Stdout, os.Stderr)) }

// mainWith runs a command line and returns the exit code: 0 on success, 1
// on failure, 2 on a usage error.
func mainWith(args []string, stdout, stderr io.Writer) int {
	name := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	} else if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		name, args = "help", nil
	}
	cmd, ok := lookup(name)
	if !ok {
		fmt.Fprintf(stderr, "strata: unknown command %q\n\n", name)
		printHelp(stderr)
		return 2
	}
	err := cmd.run(args, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintln(stderr, "strata:", err)
		return 1
	}
}

func lookup(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// newFlags makes a command's flag set: errors and --help print the
// command's usage and flags to stderr; the caller maps the error to an
// exit code.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	cmd, _ := lookup(name)
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\n\nUsage:\n  %s\n", cmd.summary, strings.ReplaceAll(cmd.usage, "\n       ", "\n  "))
		var n int
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(stderr, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parse parses flags, turning a parse error into errUsage (flag has
// already printed it with the usage).
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}

func helpCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		printHelp(stdout)
		return nil
	}
	cmd, ok := lookup(args[0])
	if !ok {
		fmt.Fprintf(stderr, "strata help: unknown command %q\n\n", args[0])
		printHelp(stderr)
		return errUsage
	}
	// Every command prints its own usage for --help.
	return cmd.run([]string{"--help"}, stdout, stdout)
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "strata: tiered resource pools for containerd, as an NRI plugin.")
	fmt.Fprintln(w, "\nUsage:\n  strata COMMAND [flags]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'strata help COMMAND' or 'strata COMMAND --help' for a command's flags.")
	fmt.Fprintln(w, "Documentation: docs/operating.md and docs/configuration.md in the source tree.")
}
