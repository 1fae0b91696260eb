package kserve

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/modelplane/modelplane"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Poll reads the InferenceService once: the Op is done when KServe has
// observed its generation and reports Ready; Ready=False with a failure
// reason is a failed change.
func (p *Provider) Poll(ctx context.Context, t modelplane.Target, op modelplane.Op) (modelplane.OpStatus, error) {
	ns, name, gen, err := parseOp(op.ID)
	if err != nil {
		return modelplane.OpStatus{}, err
	}
	c, dc, err := p.setup(t, "")
	if err != nil {
		return modelplane.OpStatus{}, err
	}
	c.namespace, c.name = ns, name
	u, err := dc.Resource(InferenceServices).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return modelplane.OpStatus{Done: true, Failed: true, Reason: fmt.Sprintf("InferenceService %s/%s no longer exists", ns, name)}, nil
	}
	if err != nil {
		return modelplane.OpStatus{}, apiError(fmt.Sprintf("get InferenceService %s/%s", ns, name), err)
	}
	return pollStatus(parseISVC(u), gen), nil
}

// inProgress are Ready=False reasons that mean "not yet", not "failed".
var inProgress = map[string]bool{"": true, "Deploying": true, "Progressing": true, "RevisionMissing": true, "Unknown": true}

// failed: KServe reports the current spec's revision as failed.
func (o observed) failed() bool {
	return o.current() && o.ready.status == "False" && !inProgress[o.ready.reason]
}

func pollStatus(o observed, gen int64) modelplane.OpStatus {
	if o.observedGen < gen {
		return modelplane.OpStatus{}
	}
	switch {
	case o.ready.status == "True":
		return modelplane.OpStatus{Done: true}
	case o.ready.status == "False" && !inProgress[o.ready.reason]:
		return modelplane.OpStatus{Done: true, Failed: true,
			Reason: fmt.Sprintf("InferenceService %s generation %d: %s: %s", o.ref(), o.observedGen, o.ready.reason, o.ready.message)}
	}
	return modelplane.OpStatus{}
}

// opFor is the handle of the InferenceService at a generation.
func opFor(ns, name string, generation int64, what string) modelplane.Op {
	return modelplane.Op{ID: fmt.Sprintf("%s/%s@%d", ns, name, generation), What: what}
}

func parseOp(id string) (ns, name string, generation int64, err error) {
	at := strings.LastIndexByte(id, '@')
	slash := strings.IndexByte(id, '/')
	if at < 0 || slash < 0 || slash > at {
		return "", "", 0, invalid("op %q is not namespace/name@generation", id)
	}
	generation, err = strconv.ParseInt(id[at+1:], 10, 64)
	if err != nil {
		return "", "", 0, invalid("op %q is not namespace/name@generation", id)
	}
	return id[:slash], id[slash+1 : at], generation, nil
}
