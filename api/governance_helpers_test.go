package api_test

import (
	"sync"
	"testing"

	"github.com/modelplane/modelplane/policy"
)

var (
	engineOnce sync.Once
	engine     *policy.Engine
	engineErr  error
)

// governance is the default policy bundle, shared by the tests: compiling
// it once keeps the suites fast.
func governance(t testing.TB) *policy.Engine {
	t.Helper()
	engineOnce.Do(func() { engine, engineErr = policy.New("") })
	if engineErr != nil {
		t.Fatal(engineErr)
	}
	return engine
}
