// Package reliability is modelplane's fault and load suite: worker and
// whole-process crashes at stage boundaries, injected provider faults, and
// thousands of concurrent promotions. Its tests carry the "reliability"
// build tag, so a plain `go test ./...` skips them; `make test-reliability`
// runs them. README.md says what each test proves.
package reliability
