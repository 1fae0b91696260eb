package gateway

import (
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

// Rules is the gateway's rules file (config gateway.rules_file):
//
//	content:            # replaces DefaultRules when present
//	  - {detector: secret, where: arguments, action: block}
//	budgets:
//	  - {per: user, tool: search_notes, per_minute: 60, per_day: 5000}
//	upstreams:
//	  io.github.acme/notes: {bearer_env: NOTES_TOKEN}
type Rules struct {
	Content   []Rule              `json:"content,omitempty"`
	Budgets   []Budget            `json:"budgets,omitempty"`
	Upstreams map[string]Upstream `json:"upstreams,omitempty"`
}

// LoadRules reads a rules file; unknown keys are errors, so a typo does not
// silently leave a budget unset.
func LoadRules(path string) (Rules, error) {
	var r Rules
	b, err := os.ReadFile(path)
	if err != nil {
		return r, fmt.Errorf("gateway rules: %w", err)
	}
	if err := yaml.UnmarshalStrict(b, &r); err != nil {
		return r, fmt.Errorf("gateway rules %s: %w", path, err)
	}
	if r.Content != nil {
		if _, err := NewScanner(r.Content); err != nil {
			return r, fmt.Errorf("gateway rules %s: %w", path, err)
		}
	}
	return r, nil
}
