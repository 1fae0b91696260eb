// Package sim is a simulated serving platform. Endpoints, traffic and the
// mutations applied live in the metadata database, so a simulated rollout
// survives a restart like a real one. Health per version is synthetic and can
// be set at runtime (dev mode) to show a drift-triggered rollback. Faults can
// be injected for tests: failed calls and lost replies (applied, then an error).
package sim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/modelplane/modelplane"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Name is the provider name targets use.
const Name = "sim"

type endpointRow struct {
	Target   string                  `gorm:"primaryKey;size:63"`
	Model    string                  `gorm:"primaryKey;size:63"`
	Traffic  modelplane.TrafficSplit `gorm:"serializer:json"`
	Shadow   *modelplane.Shadow      `gorm:"serializer:json"`
	Versions []string                `gorm:"serializer:json"`
}

func (endpointRow) TableName() string { return "sim_endpoints" }

type mutationRow struct {
	ID        string `gorm:"primaryKey;size:255"`
	Target    string `gorm:"index:idx_sim_mut"`
	Model     string `gorm:"index:idx_sim_mut"`
	Kind      string
	Detail    string
	AppliedAt time.Time
}

func (mutationRow) TableName() string { return "sim_mutations" }

type healthRow struct {
	Target       string `gorm:"primaryKey;size:63"`
	Model        string `gorm:"primaryKey;size:63"`
	Version      string `gorm:"primaryKey;size:63"`
	ErrorRate    float64
	LatencyP99Ms float64
	Drift        float64
	NoData       bool
}

func (healthRow) TableName() string { return "sim_health" }

// Baseline is the health a serving version reports until told otherwise.
var Baseline = modelplane.Health{ErrorRate: 0.001, LatencyP99Ms: 42, Drift: 0.02}

// Migrator is the store's schema hook.
type Migrator interface{ Migrate(models ...any) error }

// Provider is the simulated platform.
type Provider struct {
	db *gorm.DB

	mu         sync.Mutex
	failNext   int
	loseNext   int
	calls      int
	callsByOp  map[string]int
	lastFailed string
	// settlePolls makes changes asynchronous: an Op is done after this many polls.
	settlePolls int
	polls       map[string]int
}

// New creates the simulator's tables (if missing) in db.
func New(db *gorm.DB, m Migrator) (*Provider, error) {
	if err := m.Migrate(&endpointRow{}, &mutationRow{}, &healthRow{}); err != nil {
		return nil, fmt.Errorf("sim: migrate: %w", err)
	}
	return &Provider{db: db, callsByOp: map[string]int{}, polls: map[string]int{}}, nil
}

// FailNext makes the next n calls fail before doing anything (a platform outage).
func (p *Provider) FailNext(n int) { p.mu.Lock(); p.failNext = n; p.mu.Unlock() }

// SettleAfter makes every change take n polls to finish, as on a cloud
// platform (0, the default: changes are done when the call returns).
func (p *Provider) SettleAfter(n int) { p.mu.Lock(); p.settlePolls = n; p.mu.Unlock() }

// op is the handle of a change the simulator is "still applying".
func (p *Provider) op(id, what string) modelplane.Op {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.settlePolls == 0 {
		return modelplane.Op{}
	}
	return modelplane.Op{ID: "sim:" + id, What: what}
}

// Poll reports a change done after the configured number of polls. An op
// this process never saw (after a restart) was applied in the database already.
func (p *Provider) Poll(ctx context.Context, t modelplane.Target, op modelplane.Op) (modelplane.OpStatus, error) {
	if err := p.enter("Poll"); err != nil {
		return modelplane.OpStatus{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.polls[op.ID]++
	return modelplane.OpStatus{Done: p.polls[op.ID] > p.settlePolls}, nil
}

// LoseNextReplies makes the next n mutations apply and then report an error,
// as when a platform's reply is lost: the caller retries something already done.
func (p *Provider) LoseNextReplies(n int) { p.mu.Lock(); p.loseNext = n; p.mu.Unlock() }

// Calls reports how many calls reached the simulator for an operation.
func (p *Provider) Calls(op string) int { p.mu.Lock(); defer p.mu.Unlock(); return p.callsByOp[op] }

var errInjected = errors.New("sim: injected fault: platform unavailable")

func (p *Provider) enter(op string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	p.callsByOp[op]++
	if p.failNext > 0 {
		p.failNext--
		return errInjected
	}
	return nil
}

func (p *Provider) leave(err error) error {
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.loseNext > 0 {
		p.loseNext--
		return errors.New("sim: injected fault: reply lost after the change was applied")
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", modelplane.ErrInvalid, fmt.Sprintf(format, args...))
}

// mutate runs fn on the endpoint inside a transaction unless mutationID was applied already.
func (p *Provider) mutate(ctx context.Context, t modelplane.Target, model, kind, mutationID string, fn func(*endpointRow) (string, error)) (modelplane.Op, error) {
	if mutationID == "" {
		return modelplane.Op{}, invalid("mutation id is required")
	}
	err := p.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var seen mutationRow
		err := tx.First(&seen, "id = ?", mutationID).Error
		if err == nil {
			return nil // applied before: at most once
		}
		if !errors.Is(err, gorm.ErrRecordNotFound) {
			return err
		}
		ep, err := loadEndpoint(tx, t.Name, model)
		if err != nil {
			return err
		}
		detail, err := fn(&ep)
		if err != nil {
			return err
		}
		if err := tx.Save(&ep).Error; err != nil {
			return err
		}
		return tx.Create(&mutationRow{ID: mutationID, Target: t.Name, Model: model, Kind: kind, Detail: detail, AppliedAt: time.Now().UTC()}).Error
	})
	if err := p.leave(err); err != nil {
		return modelplane.Op{}, err
	}
	return p.op(mutationID, kind), nil
}

func loadEndpoint(tx *gorm.DB, target, model string) (endpointRow, error) {
	var ep endpointRow
	err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).First(&ep, "target = ? AND model = ?", target, model).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return endpointRow{Target: target, Model: model, Traffic: modelplane.TrafficSplit{}}, nil
	}
	return ep, err
}

// RegisterVersion deploys a version on the endpoint without traffic (idempotent).
func (p *Provider) RegisterVersion(ctx context.Context, t modelplane.Target, v modelplane.Version) (modelplane.Op, error) {
	if err := p.enter("RegisterVersion"); err != nil {
		return modelplane.Op{}, err
	}
	if v.ArtifactURI == "" {
		return modelplane.Op{}, invalid("version %s has no artifact", v.Version)
	}
	err := p.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		ep, err := loadEndpoint(tx, t.Name, v.Model)
		if err != nil {
			return err
		}
		if slices.Contains(ep.Versions, v.Version) {
			return nil
		}
		ep.Versions = append(ep.Versions, v.Version)
		return tx.Save(&ep).Error
	})
	if err := p.leave(err); err != nil {
		return modelplane.Op{}, err
	}
	return p.op("register/"+t.Name+"/"+v.Model+"/"+v.Version, "deploy "+v.Version), nil
}

// SetTraffic replaces the live split. Every version named must be deployed.
func (p *Provider) SetTraffic(ctx context.Context, t modelplane.Target, model string, split modelplane.TrafficSplit, mutationID string) (modelplane.Op, error) {
	if err := p.enter("SetTraffic"); err != nil {
		return modelplane.Op{}, err
	}
	if err := split.Validate(); err != nil {
		return modelplane.Op{}, invalid("%v", err)
	}
	return p.mutate(ctx, t, model, "traffic", mutationID, func(ep *endpointRow) (string, error) {
		for v := range split {
			if !slices.Contains(ep.Versions, v) {
				return "", invalid("version %s is not deployed on %s", v, t.Name)
			}
		}
		ep.Traffic = modelplane.TrafficSplit{}
		for v, w := range split {
			if w > 0 {
				ep.Traffic[v] = w
			}
		}
		return split.String(), nil
	})
}

// StartShadow mirrors a share of requests to a deployed, non-serving version.
func (p *Provider) StartShadow(ctx context.Context, t modelplane.Target, model string, s modelplane.Shadow, mutationID string) (modelplane.Op, error) {
	if err := p.enter("StartShadow"); err != nil {
		return modelplane.Op{}, err
	}
	if s.Percent < 1 || s.Percent > 100 {
		return modelplane.Op{}, invalid("shadow percent %d out of 1..100", s.Percent)
	}
	return p.mutate(ctx, t, model, "shadow-start", mutationID, func(ep *endpointRow) (string, error) {
		if !slices.Contains(ep.Versions, s.Version) {
			return "", invalid("version %s is not deployed on %s", s.Version, t.Name)
		}
		if ep.Traffic[s.Version] > 0 {
			return "", invalid("version %s already serves traffic", s.Version)
		}
		ep.Shadow = &modelplane.Shadow{Version: s.Version, Percent: s.Percent}
		return fmt.Sprintf("%s@%d%%", s.Version, s.Percent), nil
	})
}

// StopShadow ends mirroring (a no-op when none runs); promote moves all
// traffic to the shadow version.
func (p *Provider) StopShadow(ctx context.Context, t modelplane.Target, model string, promote bool, mutationID string) (modelplane.Op, error) {
	if err := p.enter("StopShadow"); err != nil {
		return modelplane.Op{}, err
	}
	return p.mutate(ctx, t, model, "shadow-stop", mutationID, func(ep *endpointRow) (string, error) {
		detail := ""
		if promote && ep.Shadow != nil {
			ep.Traffic = modelplane.TrafficSplit{ep.Shadow.Version: 100}
			detail = "promote " + ep.Shadow.Version
		}
		ep.Shadow = nil
		return detail, nil
	})
}

// ChangeByHand sets what the endpoint serves the way a person in a cloud
// console would: no mutation id, nothing modelplane applied. An empty split
// takes all traffic off (the endpoint serves nothing); a shadow starts a
// mirror nobody asked for, nil leaves the mirror as it is.
func (p *Provider) ChangeByHand(ctx context.Context, target, model string, split modelplane.TrafficSplit, shadow *modelplane.Shadow) error {
	if len(split) > 0 {
		if err := split.Validate(); err != nil {
			return invalid("%v", err)
		}
	}
	return p.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		ep, err := loadEndpoint(tx, target, model)
		if err != nil {
			return err
		}
		for v := range split {
			if !slices.Contains(ep.Versions, v) {
				return invalid("version %s is not deployed on %s", v, target)
			}
		}
		if shadow != nil && !slices.Contains(ep.Versions, shadow.Version) {
			return invalid("version %s is not deployed on %s", shadow.Version, target)
		}
		ep.Traffic = modelplane.TrafficSplit{}
		for v, w := range split {
			if w > 0 {
				ep.Traffic[v] = w
			}
		}
		if shadow != nil {
			ep.Shadow = shadow
		}
		return tx.Save(&ep).Error
	})
}

// State reports the endpoint.
func (p *Provider) State(ctx context.Context, t modelplane.Target, model string) (modelplane.EndpointState, error) {
	if err := p.enter("State"); err != nil {
		return modelplane.EndpointState{}, err
	}
	var ep endpointRow
	err := p.db.WithContext(ctx).First(&ep, "target = ? AND model = ?", t.Name, model).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return modelplane.EndpointState{Traffic: modelplane.TrafficSplit{}}, nil
	}
	if err != nil {
		return modelplane.EndpointState{}, err
	}
	if ep.Traffic == nil {
		ep.Traffic = modelplane.TrafficSplit{}
	}
	return modelplane.EndpointState{Traffic: ep.Traffic, Shadow: ep.Shadow, Versions: ep.Versions}, nil
}

// Health reports synthetic health for a version that receives requests (live
// or mirrored); a version that receives none has no data.
func (p *Provider) Health(ctx context.Context, t modelplane.Target, model, version string, window time.Duration) (modelplane.Health, error) {
	if err := p.enter("Health"); err != nil {
		return modelplane.Health{}, err
	}
	var ep endpointRow
	err := p.db.WithContext(ctx).First(&ep, "target = ? AND model = ?", t.Name, model).Error
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		return modelplane.Health{}, err
	}
	share := ep.Traffic[version]
	if ep.Shadow != nil && ep.Shadow.Version == version {
		share = ep.Shadow.Percent
	}
	if share == 0 {
		return modelplane.Health{Version: version, NoData: true}, nil
	}
	h := Baseline
	h.Version = version
	var set healthRow
	err = p.db.WithContext(ctx).First(&set, "target = ? AND model = ? AND version = ?", t.Name, model, version).Error
	switch {
	case err == nil:
		h.ErrorRate, h.LatencyP99Ms, h.Drift, h.NoData = set.ErrorRate, set.LatencyP99Ms, set.Drift, set.NoData
	case !errors.Is(err, gorm.ErrRecordNotFound):
		return modelplane.Health{}, err
	}
	if window <= 0 {
		window = time.Minute
	}
	// A nominal 10 requests/s per percent of traffic.
	h.Requests = int64(share) * 10 * int64(window/time.Second)
	if h.NoData {
		h.Requests = 0
	}
	return h, nil
}

// Retire removes a version that serves nothing.
func (p *Provider) Retire(ctx context.Context, t modelplane.Target, model, version string) (modelplane.Op, error) {
	if err := p.enter("Retire"); err != nil {
		return modelplane.Op{}, err
	}
	err := p.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		ep, err := loadEndpoint(tx, t.Name, model)
		if err != nil {
			return err
		}
		if ep.Traffic[version] > 0 || (ep.Shadow != nil && ep.Shadow.Version == version) {
			return invalid("version %s still receives requests on %s", version, t.Name)
		}
		i := slices.Index(ep.Versions, version)
		if i < 0 {
			return nil
		}
		ep.Versions = slices.Delete(ep.Versions, i, i+1)
		return tx.Save(&ep).Error
	})
	if err := p.leave(err); err != nil {
		return modelplane.Op{}, err
	}
	return p.op("retire/"+t.Name+"/"+model+"/"+version, "retire "+version), nil
}

// SetHealth overrides the synthetic health of a version (dev mode and tests).
func (p *Provider) SetHealth(ctx context.Context, target, model, version string, h modelplane.Health) error {
	row := healthRow{Target: target, Model: model, Version: version, ErrorRate: h.ErrorRate, LatencyP99Ms: h.LatencyP99Ms, Drift: h.Drift, NoData: h.NoData}
	return p.db.WithContext(ctx).Save(&row).Error
}

// Mutation is one applied change, for tests and the dev console.
type Mutation struct {
	ID, Kind, Detail string
}

// Mutations lists the changes applied to an endpoint, in order.
func (p *Provider) Mutations(ctx context.Context, target, model string) ([]Mutation, error) {
	var rows []mutationRow
	if err := p.db.WithContext(ctx).Where("target = ? AND model = ?", target, model).Order("applied_at, id").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]Mutation, len(rows))
	for i, r := range rows {
		out[i] = Mutation{ID: r.ID, Kind: r.Kind, Detail: r.Detail}
	}
	return out, nil
}
