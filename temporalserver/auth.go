package temporalserver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/server/common/api"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/temporal"
	"google.golang.org/grpc"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/identity"
)

// Auth turns on the frontend's claim mapper, authorizer and principal stamp.
// Without it the frontend trusts every caller (dev before sign-in existed).
type Auth struct {
	// Users verifies people's bearer tokens: the Web UI user's ID token
	// (OIDC, the same issuer and claim mapping as the API) and static tokens.
	Users identity.Authenticator
	// ServiceKeyDigests are the SHA-256 digests (hex) of the credentials
	// modelplane's own API and worker present; they act as the system.
	ServiceKeyDigests []string
}

// AuthType values the claim mapper sets; Temporal shows them as the
// principal's type where principal attribution is on.
const (
	authTypeService = "modelplane-service"
	authTypeUser    = "modelplane-user"
)

// ServiceName is the principal modelplane's own API and worker act as.
const ServiceName = "modelplane"

// ServerOptions are the server options that put Auth in front of the frontend.
func (a *Auth) ServerOptions() ([]temporal.ServerOption, error) {
	if a.Users == nil && len(a.ServiceKeyDigests) == 0 {
		return nil, errors.New("temporal auth: neither users nor service keys configured")
	}
	digests := make([][]byte, 0, len(a.ServiceKeyDigests))
	for i, d := range a.ServiceKeyDigests {
		b, err := hex.DecodeString(strings.TrimSpace(d))
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("temporal auth: service key digest %d is not a hex SHA-256", i+1)
		}
		digests = append(digests, b)
	}
	cm := &claimMapper{users: a.Users, service: digests}
	return []temporal.ServerOption{
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return cm }),
		temporal.WithAuthorizer(authorizer{}),
		temporal.WithChainedFrontendGrpcInterceptors(stamp),
	}, nil
}

// claimMapper verifies the bearer token with modelplane's identity package:
// a service key is the system; anything else must be a person (or pipeline)
// the API would accept too.
type claimMapper struct {
	users   identity.Authenticator
	service [][]byte
}

func (m *claimMapper) GetClaims(ai *authorization.AuthInfo) (*authorization.Claims, error) {
	token, ok := bearer(ai.AuthToken)
	if !ok {
		return nil, errors.New("no bearer token")
	}
	sum := sha256.Sum256([]byte(token))
	for _, d := range m.service {
		if subtle.ConstantTimeCompare(sum[:], d) == 1 {
			return &authorization.Claims{Subject: ServiceName, System: authorization.RoleAdmin, AuthType: authTypeService}, nil
		}
	}
	if m.users == nil {
		return nil, errors.New("unknown service key")
	}
	p, err := m.users.Authenticate(context.Background(), token)
	if err != nil {
		return nil, err
	}
	return &authorization.Claims{Subject: p.Name, AuthType: authTypeUser, Extensions: &p}, nil
}

// AuthInfoRequired: a call without a token gets no claims and is refused by
// the authorizer (health checks excepted).
func (m *claimMapper) AuthInfoRequired() bool { return true }

func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(tok) == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// authorizer: signed-in people read; those who act on promotions
// (requesters, approvers, admins) may signal and update workflows, where
// the workflow's own policy decides what the vote or request may do; only
// admins terminate, reset, cancel, delete, start or change anything else.
// modelplane's service and Temporal's internal callers may do everything.
type authorizer struct{}

func (authorizer) Authorize(_ context.Context, c *authorization.Claims, t *authorization.CallTarget) (authorization.Result, error) {
	if authorization.IsHealthCheckAPI(t.APIName) {
		return authorization.Result{Decision: authorization.DecisionAllow}, nil
	}
	if c == nil {
		return deny("sign in first: no valid credential"), nil
	}
	allow := authorization.Result{Decision: authorization.DecisionAllow, Principal: &commonpb.Principal{Type: c.AuthType, Name: c.Subject}}
	if c.System >= authorization.RoleAdmin {
		return allow, nil
	}
	p, ok := c.Extensions.(*modelplane.Principal)
	if !ok {
		return deny("unrecognised credential"), nil
	}
	md := api.GetMethodMetadata(t.APIName)
	method := api.MethodName(t.APIName)
	switch {
	case p.Has(modelplane.RoleAdmin):
		return allow, nil
	case md.Scope == api.ScopeUnknown:
		return deny(p.Name + " may not call " + method), nil
	case md.Access == api.AccessReadOnly:
		if len(p.Roles) > 0 {
			return allow, nil
		}
	case actsOnPromotions(method, t.Request):
		if p.Has(modelplane.RoleRequester) || p.Has(modelplane.RoleApprover) {
			return allow, nil
		}
		return deny(fmt.Sprintf("%s (%s) may not %s: requesters, approvers and admins only", p.Name, strings.Join(p.Roles, ","), method)), nil
	}
	return deny(fmt.Sprintf("%s (%s) may not %s: admins only", p.Name, strings.Join(p.Roles, ","), method)), nil
}

// actsOnPromotions: the calls that carry a vote, a decision or a rollback
// request to a running workflow. Starting workflows (signal-with-start,
// multi-operation) and batch operations other than signals stay with admins.
func actsOnPromotions(method string, req any) bool {
	switch method {
	case "SignalWorkflowExecution", "UpdateWorkflowExecution":
		return true
	case "StartBatchOperation":
		r, ok := req.(*workflowservice.StartBatchOperationRequest)
		return ok && r.GetSignalOperation() != nil
	}
	return false
}

func deny(reason string) authorization.Result {
	return authorization.Result{Decision: authorization.DecisionDeny, Reason: reason}
}

// stamp replaces whatever principal header a client sent on a signal or
// update with the one the claim mapper verified, so workflow code can tell
// who sent it. Temporal's internal callers (the batcher replaying a stamped
// batch signal) keep the header they carry.
func stamp(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	c, _ := ctx.Value(authorization.MappedClaims).(*authorization.Claims)
	if c != nil && c.AuthType == authorization.InternalPrincipalType {
		return next(ctx, req)
	}
	// Anyone else's header is replaced, or removed when the caller is not
	// one modelplane knows: a client never chooses what the workflow reads.
	var who *modelplane.Principal
	switch {
	case c == nil:
	case c.AuthType == authTypeService:
		who = &modelplane.Principal{Name: ServiceName, Method: modelplane.AuthSystem}
	case c.AuthType == authTypeUser:
		if p, ok := c.Extensions.(*modelplane.Principal); ok {
			cp := *p
			cp.Expires = nil
			who = &cp
		}
	}
	if err := stampRequest(req, who); err != nil {
		return nil, serviceerror.NewInternal("stamping the caller's principal: " + err.Error())
	}
	return next(ctx, req)
}

// stampRequest sets the principal header on every header a signal or an
// update reaches the workflow with; a nil who removes it.
func stampRequest(req any, who *modelplane.Principal) error {
	var headers []**commonpb.Header
	switch r := req.(type) {
	case *workflowservice.SignalWorkflowExecutionRequest:
		headers = append(headers, &r.Header)
	case *workflowservice.SignalWithStartWorkflowExecutionRequest:
		headers = append(headers, &r.Header)
	case *workflowservice.UpdateWorkflowExecutionRequest:
		if in := r.GetRequest().GetInput(); in != nil {
			headers = append(headers, &in.Header)
		}
	case *workflowservice.ExecuteMultiOperationRequest:
		for _, op := range r.GetOperations() {
			if s := op.GetStartWorkflow(); s != nil {
				headers = append(headers, &s.Header)
			}
			if in := op.GetUpdateWorkflow().GetRequest().GetInput(); in != nil {
				headers = append(headers, &in.Header)
			}
		}
	case *workflowservice.StartBatchOperationRequest:
		if s := r.GetSignalOperation(); s != nil {
			headers = append(headers, &s.Header)
		}
	default:
		return nil
	}
	if len(headers) == 0 {
		return nil
	}
	if who == nil {
		for _, h := range headers {
			if *h != nil {
				delete((*h).Fields, modelplane.PrincipalHeader)
			}
		}
		return nil
	}
	// Plain JSON, never the payload codec: the stamp is not secret and the
	// worker reads it with the default converter.
	p, err := converter.GetDefaultDataConverter().ToPayload(*who)
	if err != nil {
		return err
	}
	for _, h := range headers {
		if *h == nil {
			*h = &commonpb.Header{}
		}
		if (*h).Fields == nil {
			(*h).Fields = map[string]*commonpb.Payload{}
		}
		(*h).Fields[modelplane.PrincipalHeader] = p
	}
	return nil
}
