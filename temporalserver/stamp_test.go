package temporalserver

import (
	"context"
	"testing"
	"time"

	batchpb "go.temporal.io/api/batch/v1"
	commonpb "go.temporal.io/api/common/v1"
	updatepb "go.temporal.io/api/update/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/server/common/authorization"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/identity"
)

func forgedHeader() *commonpb.Header {
	p, _ := converter.GetDefaultDataConverter().ToPayload(modelplane.Principal{Name: "mallory", Method: modelplane.AuthOIDC})
	return &commonpb.Header{Fields: map[string]*commonpb.Payload{modelplane.PrincipalHeader: p, "other": p}}
}

// requests are the calls that carry a signal or an update to a workflow,
// each with a forged principal header, and where that header sits.
func requests() map[string]struct {
	req    any
	header func() []*commonpb.Header
} {
	sig := &workflowservice.SignalWorkflowExecutionRequest{Header: forgedHeader()}
	sws := &workflowservice.SignalWithStartWorkflowExecutionRequest{Header: forgedHeader()}
	upd := &workflowservice.UpdateWorkflowExecutionRequest{Request: &updatepb.Request{Input: &updatepb.Input{Header: forgedHeader()}}}
	multi := &workflowservice.ExecuteMultiOperationRequest{Operations: []*workflowservice.ExecuteMultiOperationRequest_Operation{
		{Operation: &workflowservice.ExecuteMultiOperationRequest_Operation_StartWorkflow{StartWorkflow: &workflowservice.StartWorkflowExecutionRequest{Header: forgedHeader()}}},
		{Operation: &workflowservice.ExecuteMultiOperationRequest_Operation_UpdateWorkflow{UpdateWorkflow: &workflowservice.UpdateWorkflowExecutionRequest{
			Request: &updatepb.Request{Input: &updatepb.Input{Header: forgedHeader()}}}}},
	}}
	batch := &workflowservice.StartBatchOperationRequest{Operation: &workflowservice.StartBatchOperationRequest_SignalOperation{
		SignalOperation: &batchpb.BatchOperationSignal{Header: forgedHeader()}}}
	return map[string]struct {
		req    any
		header func() []*commonpb.Header
	}{
		"signal":            {sig, func() []*commonpb.Header { return []*commonpb.Header{sig.Header} }},
		"signal-with-start": {sws, func() []*commonpb.Header { return []*commonpb.Header{sws.Header} }},
		"update":            {upd, func() []*commonpb.Header { return []*commonpb.Header{upd.Request.Input.Header} }},
		"multi-operation": {multi, func() []*commonpb.Header {
			return []*commonpb.Header{multi.Operations[0].GetStartWorkflow().Header, multi.Operations[1].GetUpdateWorkflow().Request.Input.Header}
		}},
		"batch signal": {batch, func() []*commonpb.Header { return []*commonpb.Header{batch.GetSignalOperation().Header} }},
	}
}

func TestStampReplacesOrRemovesTheHeader(t *testing.T) {
	bob := &modelplane.Principal{Name: "bob", Teams: []string{"growth"}, Roles: []string{modelplane.RoleApprover}, Method: modelplane.AuthOIDC}
	for _, tc := range []struct {
		caller string
		claims *authorization.Claims
		want   string // stamped name; "-" removed; "mallory" kept
	}{
		{"a signed-in person", &authorization.Claims{Subject: "bob", AuthType: authTypeUser, Extensions: bob}, "bob"},
		{"modelplane's service", &authorization.Claims{Subject: ServiceName, AuthType: authTypeService}, ServiceName},
		{"no claims", nil, "-"},
		{"claims of another kind", &authorization.Claims{Subject: "x", AuthType: "jwt"}, "-"},
		{"a person without a principal", &authorization.Claims{Subject: "x", AuthType: authTypeUser}, "-"},
		{"Temporal's own batcher", &authorization.Claims{System: authorization.RoleAdmin, AuthType: authorization.InternalPrincipalType}, "mallory"},
	} {
		for name, r := range requests() {
			ctx := context.Background()
			if tc.claims != nil {
				ctx = context.WithValue(ctx, authorization.MappedClaims, tc.claims)
			}
			if _, err := stamp(ctx, r.req, nil, func(context.Context, any) (any, error) { return nil, nil }); err != nil {
				t.Fatal(err)
			}
			for _, h := range r.header() {
				if h.Fields["other"] == nil {
					t.Errorf("%s, %s: another header was dropped", tc.caller, name)
				}
				got := "-"
				if p := h.Fields[modelplane.PrincipalHeader]; p != nil {
					var who modelplane.Principal
					if err := converter.GetDefaultDataConverter().FromPayload(p, &who); err != nil {
						t.Fatal(err)
					}
					got = who.Name
				}
				if got != tc.want {
					t.Errorf("%s, %s: principal header %q, want %q", tc.caller, name, got, tc.want)
				}
			}
		}
	}
}

// TestClaimMapperVerifiesIDTokens: the Web UI's ID token is accepted only
// from the configured issuer, for the UI's audience, and before it expires.
func TestClaimMapperVerifiesIDTokens(t *testing.T) {
	issuer, good := oidcIssuer(t, time.Now().Add(time.Hour))
	_, foreign := oidcIssuer(t, time.Now().Add(time.Hour))
	_, expired := oidcIssuer(t, time.Now().Add(-10*time.Minute))
	trusted, err := identity.NewOIDC(context.Background(), identity.OIDCConfig{Issuer: issuer, Audience: []string{"temporal-ui"}})
	if err != nil {
		t.Fatal(err)
	}
	cm := &claimMapper{users: trusted}
	c, err := cm.GetClaims(&authorization.AuthInfo{AuthToken: "Bearer " + good})
	if err != nil || c.Subject != "bob" || c.AuthType != authTypeUser || c.System != 0 {
		t.Fatalf("a valid ID token: %+v, %v", c, err)
	}
	if p, _ := c.Extensions.(*modelplane.Principal); p == nil || p.Method != modelplane.AuthOIDC || !p.Has(modelplane.RoleApprover) || !p.InTeam("growth") {
		t.Fatalf("principal from the ID token: %+v", c.Extensions)
	}
	for name, tok := range map[string]string{"another issuer's token": foreign, "an expired token": expired, "no scheme": good} {
		h := "Bearer " + tok
		if name == "no scheme" {
			h = tok
		}
		if c, err := cm.GetClaims(&authorization.AuthInfo{AuthToken: h}); err == nil {
			t.Errorf("%s accepted: %+v", name, c)
		}
	}
}
