package console

import (
	"testing"

	"github.com/modelplane/modelplane"
)

// Every rollback cause has plain words on the promotion and provenance pages.
func TestEveryRollbackCauseIsWorded(t *testing.T) {
	for _, c := range modelplane.RollbackCauses {
		if causes[c] == "" {
			t.Errorf("no wording for rollback cause %q", c)
		}
	}
}
