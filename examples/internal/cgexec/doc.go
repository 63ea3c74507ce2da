// Package cgexec is the plumbing the example commands (examples/pin,
// examples/memory-policy, examples/batch-io-net) share, so each example's
// main.go shows only what it does with Strata's packages:
//
//   - Main runs an example's run function and turns its error into an exit
//     status;
//   - Quantity and Argv parse the flags every example has (a Kubernetes
//     quantity, the command after "--");
//   - NewCgroup makes the example's cgroup, strata-example/<name>-<pid>;
//   - Start and StartCommand start a command inside that cgroup, so that its
//     very first instruction already runs there: what a container runtime
//     does between fork and exec;
//   - CheckArgErrors is the examples' table test of bad command lines.
package cgexec
