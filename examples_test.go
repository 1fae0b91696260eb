package modelplane_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"testing"

	"github.com/modelplane/modelplane"
)

// The example configs are checked by the tools that will load them.
func TestExamples(t *testing.T) {
	data, err := os.ReadFile("examples/target-with-prometheus.json")
	if err != nil {
		t.Fatal(err)
	}
	var tg modelplane.Target
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&tg); err != nil {
		t.Fatal(err)
	}
	if err := tg.Validate(); err != nil {
		t.Fatalf("example target: %v", err)
	}
	if len(tg.Analysis.Checks) != 3 {
		t.Fatalf("checks = %d", len(tg.Analysis.Checks))
	}
	for _, c := range [][]string{
		{"promtool", "check", "rules", "examples/prometheus-rules.yml"},
		{"amtool", "check-config", "examples/alertmanager.yml"},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Errorf("%v: %v\n%s (hack/ensure-monitoring.sh installs the tools)", c, err, out)
		}
	}
}
