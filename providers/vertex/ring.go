package vertex

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// The applied-mutation ring lives in the endpoint's labels, so a restarted
// worker (or a zombie attempt of an old activity) sees what was applied.
// Each of ringSlots labels holds up to perSlot digests of digestChars hex
// characters, newest first: perSlot*(digestChars+1)-1 = 54 ≤ 63 characters.
const (
	ringSlots   = 4
	perSlot     = 5
	digestChars = 10
	// RingSize is how many recent mutation ids an endpoint remembers.
	RingSize = ringSlots * perSlot
)

func mutationDigest(id string) string { return digest("mutation\x00"+id, digestChars) }

func ringSlot(i int) string { return fmt.Sprintf("%s-%d", labelMutations, i) }

// appliedMutations reads the ring, newest first.
func appliedMutations(labels map[string]string) []string {
	var out []string
	for i := range ringSlots {
		if v := labels[ringSlot(i)]; v != "" {
			out = append(out, strings.Split(v, "_")...)
		}
	}
	return out
}

func mutationApplied(labels map[string]string, id string) bool {
	return slices.Contains(appliedMutations(labels), mutationDigest(id))
}

// withMutation returns a copy of labels with id recorded; the oldest entry
// falls out once the ring is full.
func withMutation(labels map[string]string, id string) map[string]string {
	ring := append([]string{mutationDigest(id)}, appliedMutations(labels)...)
	if len(ring) > RingSize {
		ring = ring[:RingSize]
	}
	out := maps.Clone(labels)
	if out == nil {
		out = map[string]string{}
	}
	for i := range ringSlots {
		lo, hi := min(i*perSlot, len(ring)), min((i+1)*perSlot, len(ring))
		if lo == hi {
			delete(out, ringSlot(i))
			continue
		}
		out[ringSlot(i)] = strings.Join(ring[lo:hi], "_")
	}
	return out
}
