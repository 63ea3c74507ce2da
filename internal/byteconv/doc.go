// Package byteconv parses numbers from byte slices without allocating, for
// samplers that re-read kernel files (cgroup counters, PSI) many times a
// second. strconv needs a string, and converting costs an allocation per
// value.
package byteconv
