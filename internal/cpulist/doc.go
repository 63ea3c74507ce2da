// Package cpulist parses Linux CPU and node lists ("0-3,8,10-11") with
// bounds: every list Strata reads — from its configuration, from
// annotations, from sysfs and from cgroup files — goes through Parse or
// Ranges before anything is expanded, so a hostile or corrupt value (an id
// beyond any machine, a range of billions, a list repeated thousands of
// times, a negative id, digits that overflow) is a clear error in bounded
// time and memory rather than a map of billions of entries, which
// k8s.io/utils/cpuset.Parse would build.
package cpulist
