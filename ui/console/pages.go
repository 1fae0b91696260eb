package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/api"
)

type deploymentView struct {
	D        modelplane.Deployment
	Guardian *api.GuardianStatus
	GuardErr string
	Detail   bool
}

// deployments lists what serves where from the store alone: each
// guardian answers on its deployment's page (one query each would make the
// list as slow as the slowest of fifty workflows).
func (r *req) deployments() error {
	var out struct {
		Deployments []modelplane.Deployment `json:"deployments"`
	}
	if err := r.call(http.MethodGet, "/v1/deployments", nil, nil, &out); err != nil {
		return err
	}
	sort.Slice(out.Deployments, func(i, j int) bool {
		a, b := out.Deployments[i], out.Deployments[j]
		return a.Target+"\x00"+a.Model < b.Target+"\x00"+b.Model
	})
	vs := make([]deploymentView, len(out.Deployments))
	for i, d := range out.Deployments {
		vs[i].D = d
	}
	return r.show("deployments", &view{Title: "Deployments", Nav: "deployments", Live: "*", Data: vs})
}

// deployment is one model on one target with its guardian: running, its
// last health check, and the rollback it can do now.
func (r *req) deployment() error {
	target, model := r.r.PathValue("target"), r.r.PathValue("model")
	v := deploymentView{Detail: true}
	base := "/v1/deployments/" + url.PathEscape(target) + "/" + url.PathEscape(model)
	if err := r.call(http.MethodGet, base, nil, nil, &v.D); err != nil {
		return err
	}
	var g api.GuardianStatus
	if err := r.call(http.MethodGet, base+"/guardian", nil, nil, &g); err != nil {
		v.GuardErr = errText(err)
	} else {
		v.Guardian = &g
	}
	return r.show("deployments", &view{Title: model + " on " + target, Nav: "deployments", Live: "*", Data: []deploymentView{v}})
}

func (r *req) rollbackDeployment() error {
	f := r.r.PostForm
	target, model := f.Get("target"), f.Get("model")
	body := map[string]any{"reason": strings.TrimSpace(f.Get("reason"))}
	if err := r.call(http.MethodPost, "/v1/deployments/"+url.PathEscape(target)+"/"+url.PathEscape(model)+"/rollback", nil, body, nil); err != nil {
		return err
	}
	return r.redirect("/deployments/" + url.PathEscape(target) + "/" + url.PathEscape(model) + "?notice=" + url.QueryEscape("Rollback of "+model+" on "+target+" requested by "+r.who.Name+"."))
}

func errText(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Message
	}
	return err.Error()
}

func (r *req) models() error { return r.modelsPage(nil, http.StatusOK) }

type modelsView struct {
	Models []modelplane.Model
	Form   *formError
	Tiers  []modelplane.RiskTier
}

func (r *req) modelsPage(fe *formError, status int) error {
	var out struct {
		Models []modelplane.Model `json:"models"`
	}
	if err := r.call(http.MethodGet, "/v1/models", nil, nil, &out); err != nil {
		return err
	}
	if fe == nil {
		fe = &formError{Form: url.Values{}}
	}
	v := &view{Title: "Models", Nav: "models", Data: modelsView{Models: out.Models, Form: fe,
		Tiers: []modelplane.RiskTier{modelplane.RiskLow, modelplane.RiskMedium, modelplane.RiskHigh, modelplane.RiskCritical}}}
	v.fill(r)
	r.c.render(r.w, r.r, status, "models", v)
	return nil
}

type modelView struct {
	M          modelplane.Model
	Versions   []versionView
	Targets    []modelplane.Target
	Promote    *formError
	AddVersion *formError
	IdemKey    string
}

type versionView struct {
	V      modelplane.Version
	Serves []string // "target (share %)"
}

func (r *req) model() error { return r.modelPage(nil, nil, http.StatusOK) }

// modelPage renders a model; a refused form comes back filled in, with
// the API's message next to the field it names.
func (r *req) modelPage(promote, addVersion *formError, status int) error {
	name := r.r.PathValue("name")
	if name == "" && promote != nil {
		name = promote.Form.Get("model")
	}
	if promote == nil {
		promote = &formError{Form: url.Values{}}
	}
	if addVersion == nil {
		addVersion = &formError{Form: url.Values{}}
	}
	v := modelView{Promote: promote, AddVersion: addVersion, IdemKey: randomToken()}
	if err := r.call(http.MethodGet, "/v1/models/"+url.PathEscape(name), nil, nil, &v.M); err != nil {
		return err
	}
	var vs struct {
		Versions []modelplane.Version `json:"versions"`
	}
	if err := r.call(http.MethodGet, "/v1/models/"+url.PathEscape(name)+"/versions", nil, nil, &vs); err != nil {
		return err
	}
	var ds struct {
		Deployments []modelplane.Deployment `json:"deployments"`
	}
	_ = r.call(http.MethodGet, "/v1/deployments", nil, nil, &ds)
	var ts struct {
		Targets []modelplane.Target `json:"targets"`
	}
	_ = r.call(http.MethodGet, "/v1/targets", nil, nil, &ts)
	v.Targets = ts.Targets
	sort.Slice(vs.Versions, func(i, j int) bool { return vs.Versions[i].CreatedAt.After(vs.Versions[j].CreatedAt) })
	for _, ver := range vs.Versions {
		vv := versionView{V: ver}
		for _, d := range ds.Deployments {
			if d.Model != name {
				continue
			}
			if share, ok := d.Traffic[ver.Version]; ok && share > 0 {
				vv.Serves = append(vv.Serves, d.Target+" ("+strconv.Itoa(share)+"%)")
			} else if d.PreviousStable == ver.Version {
				vv.Serves = append(vv.Serves, d.Target+" (kept warm)")
			}
		}
		v.Versions = append(v.Versions, vv)
	}
	vw := &view{Title: "Model " + v.M.Name, Nav: "models", Data: v}
	vw.fill(r)
	r.c.render(r.w, r.r, status, "model", vw)
	return nil
}

// startPromotion mirrors POST /v1/promotions: the API validates and names
// the field; the form comes back with what was typed.
func (r *req) startPromotion() error {
	f := r.r.PostForm
	strategy := map[string]any{"type": f.Get("strategy")}
	if s := strings.TrimSpace(f.Get("steps")); s != "" {
		var steps []int
		for _, part := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(part))
			if err != nil {
				return r.modelPage(&formError{Form: f, Field: "strategy.steps", Message: "must be percentages separated by commas, such as 10,50,100"}, nil, http.StatusBadRequest)
			}
			steps = append(steps, n)
		}
		strategy["steps"] = steps
	}
	for _, k := range []string{"bake", "monitor_window"} {
		if s := strings.TrimSpace(f.Get(k)); s != "" {
			strategy[k] = s
		}
	}
	body := map[string]any{"model": f.Get("model"), "version": strings.TrimSpace(f.Get("version")), "target": f.Get("target"), "strategy": strategy}
	if s := strings.TrimSpace(f.Get("approval_timeout")); s != "" {
		body["approval_timeout"] = s
	}
	r.r.Header.Set("Idempotency-Key", f.Get("idempotency_key"))
	raw, err := r.callRaw(http.MethodPost, "/v1/promotions", nil, body)
	if fe, status, ok := asFormError(err, f); ok {
		return r.modelPage(fe, nil, status)
	}
	if err != nil {
		return err
	}
	var acc api.PromotionAccepted
	if err := json.Unmarshal(raw, &acc); err != nil {
		return err
	}
	return r.redirect("/promotions/" + url.PathEscape(acc.ID) + "?notice=" + url.QueryEscape("Promotion requested by "+r.who.Name+"."))
}

func (r *req) provenance() error {
	var p api.Provenance
	path := "/v1/models/" + url.PathEscape(r.r.PathValue("name")) + "/versions/" + url.PathEscape(r.r.PathValue("version")) + "/provenance"
	if err := r.call(http.MethodGet, path, nil, nil, &p); err != nil {
		return err
	}
	return r.show("provenance", &view{Title: "Provenance of " + p.Model.Name + " " + p.Version.Version, Nav: "models", Data: p})
}

func (r *req) scorecard() error {
	var s api.Scorecard
	if err := r.call(http.MethodGet, "/v1/scorecard", nil, nil, &s); err != nil {
		return err
	}
	return r.show("scorecard", &view{Title: "Governance scorecard", Nav: "scorecard", Data: s})
}

type mcpView struct {
	Servers  []modelplane.MCPServer
	Channels []modelplane.MCPChannel
}

func (r *req) mcp() error {
	var v mcpView
	var ss struct {
		Servers []modelplane.MCPServer `json:"servers"`
	}
	if err := r.call(http.MethodGet, "/v1/mcp/servers", nil, nil, &ss); err != nil {
		return err
	}
	var cs struct {
		Channels []modelplane.MCPChannel `json:"channels"`
	}
	if err := r.call(http.MethodGet, "/v1/mcp/channels", nil, nil, &cs); err != nil {
		return err
	}
	v.Servers, v.Channels = ss.Servers, cs.Channels
	return r.show("mcp", &view{Title: "MCP servers", Nav: "mcp", Live: "*", Data: v})
}
