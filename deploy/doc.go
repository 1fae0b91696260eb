// Package deploy holds the deployment artifacts (Helm chart, compose and
// Prometheus configs, see README.md) and, in its tests, their offline
// validation. It has no Go API; this file only makes it a package, so
// `go build ./deploy/` and `go vet` treat it like any other.
package deploy
