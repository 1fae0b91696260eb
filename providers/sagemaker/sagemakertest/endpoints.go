package sagemakertest

import (
	"sort"
	"time"
)

type variant struct {
	Name, Model, InstanceType string
	Count                     int32
	Weight, Desired           float32
	Sampling                  int32 // shadow variants only
}

type endpointConfig struct {
	Name, Arn string
	Variants  []variant
	Tags      map[string]string
}

type endpoint struct {
	Name, Arn, Status, Config, Failure string
	Variants, Shadows                  []variant
	Tags                               map[string]string
	Created, Modified                  time.Time
	LastDeployment                     map[string]any

	pending *change
	left    int
}

// change is an endpoint transition that finishes after some describes.
type change struct {
	kind    string // create | update | weights | rollback
	config  string
	old     string
	weights map[string]float32
	alarm   string // reason, when a rollback alarm fires during this update
}

func (s *Server) createConfig(in struct {
	EndpointConfigName string
	ProductionVariants []struct {
		VariantName, ModelName, InstanceType string
		InitialInstanceCount                 int32
		InitialVariantWeight                 *float32
	}
	Tags []tag
}) (any, *apiError) {
	if c := s.configs[in.EndpointConfigName]; c != nil {
		return nil, validation("Cannot create already existing endpoint configuration %q.", c.Arn)
	}
	if len(in.ProductionVariants) == 0 || len(in.ProductionVariants) > 10 {
		return nil, validation("an endpoint configuration needs 1 to 10 production variants")
	}
	c := &endpointConfig{Name: in.EndpointConfigName, Arn: s.arn("endpoint-config", in.EndpointConfigName), Tags: map[string]string{}}
	seen := map[string]bool{}
	for _, pv := range in.ProductionVariants {
		if seen[pv.VariantName] {
			return nil, validation("duplicate variant name %q", pv.VariantName)
		}
		seen[pv.VariantName] = true
		if s.models[pv.ModelName] == nil {
			return nil, notFound("model", s.arn("model", pv.ModelName))
		}
		w := float32(1)
		if pv.InitialVariantWeight != nil {
			w = *pv.InitialVariantWeight
		}
		if w < 0 {
			return nil, validation("InitialVariantWeight of %s must be at least 0", pv.VariantName)
		}
		if pv.InitialInstanceCount < 1 || pv.InstanceType == "" {
			return nil, validation("variant %s needs an InstanceType and InitialInstanceCount >= 1", pv.VariantName)
		}
		c.Variants = append(c.Variants, variant{Name: pv.VariantName, Model: pv.ModelName, InstanceType: pv.InstanceType, Count: pv.InitialInstanceCount, Weight: w, Desired: w})
	}
	for _, t := range in.Tags {
		c.Tags[t.Key] = t.Value
	}
	s.configs[c.Name] = c
	return map[string]string{"EndpointConfigArn": c.Arn}, nil
}

func (s *Server) describeConfig(in struct{ EndpointConfigName string }) (any, *apiError) {
	c := s.configs[in.EndpointConfigName]
	if c == nil {
		return nil, notFound("endpoint configuration", in.EndpointConfigName)
	}
	var pvs []map[string]any
	for _, v := range c.Variants {
		pvs = append(pvs, map[string]any{"VariantName": v.Name, "ModelName": v.Model, "InstanceType": v.InstanceType, "InitialInstanceCount": v.Count, "InitialVariantWeight": v.Weight})
	}
	return map[string]any{"EndpointConfigName": c.Name, "EndpointConfigArn": c.Arn, "ProductionVariants": pvs, "CreationTime": epoch(time.Now())}, nil
}

func (s *Server) createEndpoint(in struct {
	EndpointName, EndpointConfigName string
	Tags                             []tag
}) (any, *apiError) {
	if e := s.endpoints[in.EndpointName]; e != nil {
		return nil, validation("Cannot create already existing endpoint %q.", e.Arn)
	}
	c := s.configs[in.EndpointConfigName]
	if c == nil {
		return nil, notFound("endpoint configuration", in.EndpointConfigName)
	}
	now := time.Now()
	e := &endpoint{Name: in.EndpointName, Arn: s.arn("endpoint", in.EndpointName), Status: "Creating", Config: c.Name,
		Tags: map[string]string{}, Created: now, Modified: now}
	for _, t := range in.Tags {
		e.Tags[t.Key] = t.Value
	}
	e.pending, e.left = &change{kind: "create", config: c.Name}, s.settle
	s.endpoints[e.Name] = e
	return map[string]string{"EndpointArn": e.Arn}, nil
}

func (s *Server) endpoint(name string) (*endpoint, *apiError) {
	e := s.endpoints[name]
	if e == nil {
		return nil, notFound("endpoint", name)
	}
	return e, nil
}

// advance moves a transition one describe further.
func (s *Server) advance(e *endpoint) {
	if e.pending == nil {
		return
	}
	e.left--
	if e.left > 0 {
		return
	}
	p := e.pending
	e.pending = nil
	e.Modified = time.Now()
	switch p.kind {
	case "create":
		e.Variants = append([]variant(nil), s.configs[p.config].Variants...)
		e.Status = "InService"
	case "update":
		if p.alarm != "" {
			// The alarm fired while traffic was shifting: SageMaker rolls back.
			e.Status = "RollingBack"
			e.pending, e.left = &change{kind: "rollback", config: p.old, alarm: p.alarm}, s.settle
			return
		}
		e.Config = p.config
		e.Variants = append([]variant(nil), s.configs[p.config].Variants...)
		e.Shadows = nil
		e.Status = "InService"
	case "weights":
		for i, v := range e.Variants {
			if w, ok := p.weights[v.Name]; ok {
				e.Variants[i].Weight, e.Variants[i].Desired = w, w
			}
		}
		e.Status = "InService"
	case "rollback":
		if s.failRB {
			e.Status = "UpdateRollbackFailed"
			e.Failure = "Rollback failed after " + p.alarm + ": the old fleet could not be restored"
			return
		}
		e.Status = "InService"
		e.Failure = "Deployment was rolled back: " + p.alarm
	}
}

func (s *Server) describeEndpoint(in struct{ EndpointName string }) (any, *apiError) {
	e, err := s.endpoint(in.EndpointName)
	if err != nil {
		return nil, err
	}
	s.advance(e)
	out := map[string]any{
		"EndpointName": e.Name, "EndpointArn": e.Arn, "EndpointStatus": e.Status, "EndpointConfigName": e.Config,
		"CreationTime": epoch(e.Created), "LastModifiedTime": epoch(e.Modified),
		"ProductionVariants": summaries(e.Variants),
	}
	if len(e.Shadows) > 0 {
		out["ShadowProductionVariants"] = summaries(e.Shadows)
	}
	if e.Failure != "" {
		out["FailureReason"] = e.Failure
	}
	if e.LastDeployment != nil {
		out["LastDeploymentConfig"] = e.LastDeployment
	}
	if e.pending != nil && (e.pending.kind == "update") {
		out["PendingDeploymentSummary"] = map[string]any{"EndpointConfigName": e.pending.config}
	}
	return out, nil
}

func summaries(vs []variant) []map[string]any {
	out := []map[string]any{}
	for _, v := range vs {
		out = append(out, map[string]any{
			"VariantName": v.Name, "CurrentWeight": v.Weight, "DesiredWeight": v.Desired,
			"CurrentInstanceCount": v.Count, "DesiredInstanceCount": v.Count,
		})
	}
	return out
}

func (s *Server) updateEndpoint(in struct {
	EndpointName, EndpointConfigName string
	DeploymentConfig                 map[string]any
}) (any, *apiError) {
	e, err := s.endpoint(in.EndpointName)
	if err != nil {
		return nil, err
	}
	if e.Status != "InService" {
		return nil, validation("Cannot update in-progress endpoint %q.", e.Arn)
	}
	c := s.configs[in.EndpointConfigName]
	if c == nil {
		return nil, notFound("endpoint configuration", in.EndpointConfigName)
	}
	for _, v := range c.Variants {
		if s.models[v.Model] == nil {
			return nil, notFound("model", s.arn("model", v.Model))
		}
	}
	ch := &change{kind: "update", config: c.Name, old: e.Config}
	if dc := in.DeploymentConfig; dc != nil {
		e.LastDeployment = dc
		ch.alarm = s.firingAlarm(dc)
	}
	e.Status, e.Failure = "Updating", ""
	e.pending, e.left = ch, s.settle
	return map[string]string{"EndpointArn": e.Arn}, nil
}

// firingAlarm returns the reason of a firing alarm the deployment config rolls back on.
func (s *Server) firingAlarm(dc map[string]any) string {
	ar, _ := dc["AutoRollbackConfiguration"].(map[string]any)
	alarms, _ := ar["Alarms"].([]any)
	for _, a := range alarms {
		m, _ := a.(map[string]any)
		name, _ := m["AlarmName"].(string)
		if r, ok := s.firing[name]; ok {
			return r
		}
	}
	return ""
}

func (s *Server) updateWeights(in struct {
	EndpointName                string
	DesiredWeightsAndCapacities []struct {
		VariantName   string
		DesiredWeight *float32
	}
}) (any, *apiError) {
	e, err := s.endpoint(in.EndpointName)
	if err != nil {
		return nil, err
	}
	if e.Status != "InService" {
		return nil, validation("Cannot update in-progress endpoint %q.", e.Arn)
	}
	weights := map[string]float32{}
	var sum float32
	for _, d := range in.DesiredWeightsAndCapacities {
		found := false
		for _, v := range e.Variants {
			found = found || v.Name == d.VariantName
		}
		if !found {
			return nil, validation("The variant name(s) [%s] is/are not present for endpoint %s.", d.VariantName, e.Name)
		}
		if d.DesiredWeight == nil {
			continue
		}
		if *d.DesiredWeight < 0 {
			return nil, validation("DesiredWeight of %s must be at least 0", d.VariantName)
		}
		weights[d.VariantName] = *d.DesiredWeight
	}
	for _, v := range e.Variants {
		if w, ok := weights[v.Name]; ok {
			sum += w
		} else {
			sum += v.Weight
		}
	}
	if sum <= 0 {
		return nil, validation("the weights of endpoint %s would sum to 0", e.Name)
	}
	for i, v := range e.Variants {
		if w, ok := weights[v.Name]; ok {
			e.Variants[i].Desired = w
		}
	}
	e.Status = "Updating"
	e.pending, e.left = &change{kind: "weights", weights: weights}, s.settle
	return map[string]string{"EndpointArn": e.Arn}, nil
}

// Variants reports an endpoint's production variants → current weight, and its shadows.
func (s *Server) Variants(endpoint string) (weights map[string]float32, shadows []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.endpoints[endpoint]
	if e == nil {
		return nil, nil
	}
	weights = map[string]float32{}
	for _, v := range e.Variants {
		weights[v.Name] = v.Weight
	}
	for _, v := range e.Shadows {
		shadows = append(shadows, v.Name)
	}
	sort.Strings(shadows)
	return weights, shadows
}

// Configs counts the endpoint configs created.
func (s *Server) Configs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.configs)
}

// LastDeploymentConfig is the DeploymentConfig of the endpoint's last
// UpdateEndpoint, as sent (JSON-decoded), or nil.
func (s *Server) LastDeploymentConfig(endpoint string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.endpoints[endpoint]; e != nil {
		return e.LastDeployment
	}
	return nil
}
