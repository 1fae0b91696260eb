package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"time"

	"github.com/modelplane/modelplane"
)

// callRecord is what the gateway knows of one call when it ends.
type callRecord struct {
	p          modelplane.Principal
	meta       modelplane.MCPServer
	channel    string
	tool       string
	outcome    modelplane.ToolOutcome
	reason     string
	decision   *modelplane.PolicyDecision
	findings   []Finding
	argsHash   string
	resultHash string
	start      time.Time
	upstream   time.Duration
}

// record writes the call's audit record (in the background, batched) and
// counts it. Arguments and results appear only as sha256 digests and
// findings only as detector and path: the content itself is never kept.
func (g *Gateway) record(c callRecord) {
	elapsed := g.cfg.Now().Sub(c.start)
	details := map[string]any{
		"tool":            c.tool,
		"identity_method": c.p.Method,
		"latency_ms":      float64(elapsed.Microseconds()) / 1000,
	}
	if c.p.Client != "" {
		details["agent"] = c.p.Client
	}
	if len(c.p.Act) > 0 {
		details["act"] = c.p.Act
	}
	if c.reason != "" {
		details["reason"] = c.reason
	}
	if c.argsHash != "" {
		details["arguments_sha256"] = c.argsHash
	}
	if c.resultHash != "" {
		details["result_sha256"] = c.resultHash
	}
	if len(c.findings) > 0 {
		details["findings"] = c.findings
	}
	if c.upstream > 0 {
		details["upstream_ms"] = float64(c.upstream.Microseconds()) / 1000
	}
	server := c.meta.Name
	actor := c.p.Name
	if actor == "" {
		actor = "anonymous"
	}
	g.audit.add(modelplane.AuditRecord{Key: "tool-call/" + newKey(), Time: c.start.UTC(), Actor: actor,
		Action: modelplane.AuditToolCall, Subject: server + "/" + c.tool, Model: server, Target: c.channel,
		Version: c.meta.Version, Decision: string(c.outcome), Policy: c.decision, Details: details})
	g.metrics.call(server, c.tool, c.outcome, elapsed-c.upstream, c.findings)
}

func newKey() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// auditWriter appends records in batches: one transaction per batch keeps
// the hash chain ahead of the gateway under load. A failed batch is retried
// (record keys make the retry a no-op for what was written); records are
// never dropped, so a stalled store slows calls rather than losing them.
type auditWriter struct {
	st    Store
	log   *slog.Logger
	in    chan modelplane.AuditRecord
	done  chan struct{}
	once  sync.Once
	flush chan chan struct{}
}

const (
	auditBatch  = 256
	auditLinger = 20 * time.Millisecond
)

func newAuditWriter(st Store, log *slog.Logger) *auditWriter {
	a := &auditWriter{st: st, log: log, in: make(chan modelplane.AuditRecord, 4*auditBatch),
		done: make(chan struct{}), flush: make(chan chan struct{})}
	go a.run()
	return a
}

func (a *auditWriter) add(r modelplane.AuditRecord) { a.in <- r }

// sync waits until every record added before it is written (tests, Close).
func (a *auditWriter) sync() {
	ack := make(chan struct{})
	a.flush <- ack
	<-ack
}

func (a *auditWriter) close() error {
	a.once.Do(func() {
		a.sync()
		close(a.in)
		<-a.done
	})
	return nil
}

func (a *auditWriter) run() {
	defer close(a.done)
	batch := make([]modelplane.AuditRecord, 0, auditBatch)
	var acks []chan struct{}
	for {
		select {
		case r, ok := <-a.in:
			if !ok {
				a.write(batch)
				return
			}
			batch = append(batch, r)
			// Linger briefly so a steady trickle of calls shares one
			// transaction: a commit per call would cost more CPU than the
			// calls themselves. Records reach the chain within auditLinger.
			linger := time.NewTimer(auditLinger)
		fill:
			for len(batch) < auditBatch {
				select {
				case r, ok := <-a.in:
					if !ok {
						break fill
					}
					batch = append(batch, r)
				case <-linger.C:
					break fill
				case ack := <-a.flush:
					acks = append(acks, ack)
					break fill
				}
			}
			linger.Stop()
			a.write(batch)
			batch = batch[:0]
			if len(acks) > 0 {
				a.drainTo(acks)
				acks = acks[:0]
			}
		case ack := <-a.flush:
			a.drainTo([]chan struct{}{ack})
		}
	}
}

// drainTo writes everything queued, then releases the waiting syncs.
func (a *auditWriter) drainTo(acks []chan struct{}) {
	batch := make([]modelplane.AuditRecord, 0, auditBatch)
	for len(a.in) > 0 {
		batch = append(batch, <-a.in)
		if len(batch) == auditBatch {
			a.write(batch)
			batch = batch[:0]
		}
	}
	a.write(batch)
	for _, ack := range acks {
		close(ack)
	}
}

func (a *auditWriter) write(batch []modelplane.AuditRecord) {
	if len(batch) == 0 {
		return
	}
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := a.st.AppendAudit(ctx, batch...)
		cancel()
		if err == nil {
			return
		}
		a.log.Error("gateway audit write failed; retrying", "records", len(batch), "err", err)
		time.Sleep(wait)
	}
}
