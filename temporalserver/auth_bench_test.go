package temporalserver

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/authorization"
	"google.golang.org/grpc"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/identity"
)

// BenchmarkFrontendAuth is what modelplane adds to one signal at the
// frontend: the claim mapper verifying the bearer, the authorizer and the
// stamp. The Web UI's bearer is an RS256 ID token; pipelines use static tokens.
//
//	go test -run '^$' -bench FrontendAuth -benchmem ./temporalserver/
func BenchmarkFrontendAuth(b *testing.B) {
	const secret = "tok-bob-0123456789"
	tokens, err := identity.NewTokens([]identity.TokenEntry{{Name: "bob", Roles: []string{modelplane.RoleApprover}, Teams: []string{"growth"}, SHA256: identity.Digest(secret)}})
	if err != nil {
		b.Fatal(err)
	}
	issuer, jwt := oidcIssuer(b, time.Now().Add(time.Hour))
	oidc, err := identity.NewOIDC(context.Background(), identity.OIDCConfig{Issuer: issuer, Audience: []string{"temporal-ui"}})
	if err != nil {
		b.Fatal(err)
	}
	cm := &claimMapper{users: identity.Chain(tokens, oidc)}
	next := func(context.Context, any) (any, error) { return nil, nil }
	for _, bc := range []struct{ name, bearer string }{{"static-token", secret}, {"oidc-id-token", jwt}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := &workflowservice.SignalWorkflowExecutionRequest{Namespace: "default", SignalName: "approve",
					Header: &commonpb.Header{Fields: map[string]*commonpb.Payload{modelplane.PrincipalHeader: {Data: []byte(`"forged"`)}}}}
				claims, err := cm.GetClaims(&authorization.AuthInfo{AuthToken: "Bearer " + bc.bearer})
				if err != nil {
					b.Fatal(err)
				}
				res, _ := authorizer{}.Authorize(context.Background(), claims, &authorization.CallTarget{APIName: "/temporal.api.workflowservice.v1.WorkflowService/SignalWorkflowExecution", Namespace: "default", Request: req})
				if res.Decision != authorization.DecisionAllow {
					b.Fatal("denied")
				}
				ctx := context.WithValue(context.Background(), authorization.MappedClaims, claims)
				if _, err := stamp(ctx, req, &grpc.UnaryServerInfo{}, next); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// oidcIssuer serves discovery and a JWKS and returns an ID token shaped
// like the dev provider's, expiring at exp.
func oidcIssuer(b testing.TB, exp time.Time) (string, string) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	jwk := jose.JSONWebKey{Key: key.Public(), KeyID: "k1", Algorithm: "RS256", Use: "sig"}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL, "jwks_uri": srv.URL + "/keys"})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}})
	})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	claims, _ := json.Marshal(map[string]any{"iss": srv.URL, "aud": "temporal-ui", "sub": "bob", "preferred_username": "bob", "email": "bob@modelplane.dev",
		"groups": []string{"growth"}, "roles": []string{"approver"}, "iat": now.Add(-2 * time.Hour).Unix(), "exp": exp.Unix()})
	sig, err := signer.Sign(claims)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := sig.CompactSerialize()
	if err != nil {
		b.Fatal(err)
	}
	return srv.URL, tok
}
