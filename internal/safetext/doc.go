// Package safetext bounds text that came from outside (annotations, pod
// and container names, configuration values, kernel files) before it is
// echoed into an error, a log line or a reply to the runtime: quoted, so
// that no newline, NUL or terminal escape passes through raw, and cut to a
// length a log line can carry, so a megabyte annotation does not become a
// megabyte error. See Quote and Name.
package safetext
