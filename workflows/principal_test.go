package workflows

import (
	"testing"

	"github.com/modelplane/modelplane"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

func TestAttribute(t *testing.T) {
	typed := Vote{Approver: "carol", Decision: "approve", Comment: "ok", Method: modelplane.AuthOIDC, Roles: []string{modelplane.RoleAdmin}, PolicyDecision: "d1"}
	bob := &modelplane.Principal{Name: "bob", Teams: []string{"growth"}, Roles: []string{modelplane.RoleApprover}, Method: modelplane.AuthOIDC}
	for _, tc := range []struct {
		name  string
		stamp *modelplane.Principal
		want  Vote
	}{
		{"no stamp: the payload, unverified as before", nil, typed},
		{"modelplane's service vouches for the payload", &modelplane.Principal{Name: "modelplane", Method: modelplane.AuthSystem}, typed},
		{"a person: the stamp, whatever the payload says", bob,
			Vote{Approver: "bob", Decision: "approve", Comment: "ok", Method: modelplane.AuthOIDC, Teams: bob.Teams, Roles: bob.Roles}},
		{"a stamp without a method is unverified", &modelplane.Principal{Name: "bob"},
			Vote{Approver: "bob", Decision: "approve", Comment: "ok", Method: modelplane.AuthUI}},
	} {
		got := attribute(typed, tc.stamp)
		if got.Approver != tc.want.Approver || got.Method != tc.want.Method || got.PolicyDecision != tc.want.PolicyDecision ||
			len(got.Roles) != len(tc.want.Roles) || got.Comment != tc.want.Comment {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestPrincipalFromHeader(t *testing.T) {
	if p := principalFrom(nil); p != nil {
		t.Fatalf("no header: %+v", p)
	}
	good, _ := converter.GetDefaultDataConverter().ToPayload(modelplane.Principal{Name: "bob", Method: modelplane.AuthOIDC})
	if p := principalFrom(map[string]*commonpb.Payload{modelplane.PrincipalHeader: good}); p == nil || p.Name != "bob" {
		t.Fatalf("stamped header: %+v", p)
	}
	// Unreadable: trust nothing in it (no name, so the vote is refused).
	bad := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/plain")}, Data: []byte("x")}
	if p := principalFrom(map[string]*commonpb.Payload{modelplane.PrincipalHeader: bad}); p == nil || p.Name != "" || p.Method != modelplane.AuthUI {
		t.Fatalf("unreadable header: %+v", p)
	}
}

func TestActor(t *testing.T) {
	for _, tc := range []struct {
		stamp *modelplane.Principal
		want  string
	}{
		{nil, "typed"},
		{&modelplane.Principal{Name: "modelplane", Method: modelplane.AuthSystem}, "typed"},
		{&modelplane.Principal{Name: "bob", Method: modelplane.AuthOIDC}, "bob"},
	} {
		if got := actor("typed", tc.stamp); got != tc.want {
			t.Errorf("actor(typed, %+v) = %q, want %q", tc.stamp, got, tc.want)
		}
	}
}
