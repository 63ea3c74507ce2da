package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is stamped by the build (-ldflags "-X main.version=v0.3.0");
// otherwise the module version from the build info, or "devel".
var version = ""

// Version is what `strata version` reports.
type Version struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	// Modified: the binary was built from a work tree with changes.
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
	NRI      string `json:"nri"`
	Platform string `json:"platform"`
}

func buildVersion() Version {
	v := Version{Version: version, Commit: "unknown", NRI: "unknown", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if v.Version == "" {
		v.Version = bi.Main.Version
	}
	if v.Version == "" || v.Version == "(devel)" {
		v.Version = "devel"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	for _, d := range bi.Deps {
		if d.Path == "github.com/containerd/nri" {
			v.NRI = d.Version
			if d.Replace != nil {
				v.NRI = d.Replace.Version
			}
		}
	}
	return v
}

func versionCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	v := buildVersion()
	if *asJSON {
		b, _ := json.MarshalIndent(v, "", "  ")
		_, err := fmt.Fprintln(stdout, string(b))
		return err
	}
	mod := ""
	if v.Modified {
		mod = " (modified)"
	}
	_, err := fmt.Fprintf(stdout, "strata %s\ncommit %s%s\ngo %s %s\nnri library %s\n", v.Version, v.Commit, mod, v.Go, v.Platform, v.NRI)
	return err
}
