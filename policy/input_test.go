package policy

import (
	"testing"
	"time"

	"github.com/modelplane/modelplane"
)

// TestCallerValuesKept: a caller seen before gets the very value it got,
// and each caller's value is its own, though the callers before it differ
// only where a key could run fields together (a name and a method, list
// items, a nil list and an empty one, the expiry).
func TestCallerValuesKept(t *testing.T) {
	exp := tuesday.Add(time.Hour)
	later := exp.Add(time.Nanosecond)
	callers := []modelplane.Principal{
		{Name: "ab", Method: "c"},
		{Name: "a", Method: "bc"},
		{Name: "a", Method: "bc", Teams: []string{}},
		{Name: "a", Method: "bc", Teams: []string{""}},
		{Name: "a", Method: "bc", Roles: []string{"x", "y"}},
		{Name: "a", Method: "bc", Roles: []string{"xy"}},
		{Name: "a", Method: "bc", Teams: []string{"x"}, Roles: []string{"y"}},
		{Name: "a", Method: "bc", Expires: &exp},
		{Name: "a", Method: "bc", Expires: &later},
	}
	for i, p := range callers {
		first := callerTerm(p)
		if again := callerTerm(p); again != first {
			t.Errorf("caller %d: asked twice, got a new value", i)
		}
		want := jsonValue(t, Input{Caller: p})
		got, err := inputValue(Input{Caller: p})
		if err != nil {
			t.Fatal(err)
		}
		if got.Compare(want) != 0 {
			t.Errorf("caller %d:\n got %v\nwant %v", i, got, want)
		}
	}
}
