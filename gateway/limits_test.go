package gateway

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is safe to read from many goroutines.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.set(t)
	return c
}

func (c *fakeClock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *fakeClock) add(d time.Duration) { c.ns.Add(int64(d)) }
func at(h, m, s int, ns ...int) time.Time {
	return time.Date(2026, 3, 14, h, m, s, append(ns, 0)[0], time.UTC)
}

// keysHeld counts the keys with prefix the limiter keeps state for.
func keysHeld(l *Limiter, prefix string) (n int) {
	for i := range l.shards {
		l.shards[i].mu.Lock()
		for k := range l.shards[i].m {
			if strings.HasPrefix(k, prefix) {
				n++
			}
		}
		l.shards[i].mu.Unlock()
	}
	return n
}

func TestLimitExactUnderConcurrency(t *testing.T) {
	clk := newFakeClock(at(12, 0, 30))
	l := NewLimiter(clk.now)
	lim := Limit{PerMinute: 100, PerDay: 1000}
	var okCount atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 500 {
				if ok, _, _ := l.Take("alice", lim); ok {
					okCount.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := okCount.Load(); got != 100 {
		t.Fatalf("%d calls allowed, want exactly 100", got)
	}
	// Several keys sharing shards, through TakeAll, under the same load.
	okCount.Store(0)
	for g := range 8 {
		wg.Go(func() {
			for i := range 300 {
				keys := []string{"team", fmt.Sprintf("user%d", (g+i)%4)}
				if ok, _, _, _ := l.TakeAll(keys, []Limit{{PerMinute: 50}, {PerMinute: 20}}); ok {
					okCount.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := okCount.Load(); got != 50 {
		t.Fatalf("%d TakeAll calls allowed, want exactly 50 (the team limit)", got)
	}
}

func TestLimitMinuteWindow(t *testing.T) {
	clk := newFakeClock(at(12, 0, 30, 200_000_000))
	l := NewLimiter(clk.now)
	lim := Limit{PerMinute: 3}
	for i := range 3 {
		if ok, _, _ := l.Take("k", lim); !ok {
			t.Fatalf("call %d refused", i+1)
		}
	}
	ok, retry, window := l.Take("k", lim)
	if ok || window != "minute" || retry != 30*time.Second { // 29.8s rounds up
		t.Fatalf("4th call: ok=%v retry=%v window=%q", ok, retry, window)
	}
	clk.set(at(12, 0, 59, 999_900_000))
	if ok, retry, _ := l.Take("k", lim); ok || retry != time.Second {
		t.Fatalf("just before the minute: ok=%v retry=%v, want refused with 1s", ok, retry)
	}
	clk.set(at(12, 1, 0))
	for i := range 3 {
		if ok, _, _ := l.Take("k", lim); !ok {
			t.Fatalf("new minute, call %d refused", i+1)
		}
	}
	if ok, _, _ := l.Take("k", lim); ok {
		t.Fatal("new minute allowed a 4th call")
	}
	// Other keys and unlimited budgets are unaffected.
	if ok, _, _ := l.Take("other", lim); !ok {
		t.Fatal("another key was refused")
	}
	for range 10 {
		if ok, _, _ := l.Take("k", Limit{}); !ok {
			t.Fatal("a zero Limit refused a call")
		}
	}
}

func TestLimitDayWindow(t *testing.T) {
	clk := newFakeClock(at(23, 59, 0))
	l := NewLimiter(clk.now)
	lim := Limit{PerMinute: 5, PerDay: 2}
	l.Take("k", lim)
	clk.add(10 * time.Second)
	l.Take("k", lim)
	ok, retry, window := l.Take("k", lim)
	if ok || window != "day" || retry != 50*time.Second {
		t.Fatalf("3rd call: ok=%v retry=%v window=%q", ok, retry, window)
	}
	// Both windows full: the day is what binds, so it is reported.
	both := Limit{PerMinute: 1, PerDay: 1}
	clk.set(at(10, 0, 0))
	l.Take("b", both)
	if _, retry, window := l.Take("b", both); window != "day" || retry != 14*time.Hour {
		t.Fatalf("both full: retry=%v window=%q", retry, window)
	}
	clk.set(at(0, 0, 0).AddDate(0, 0, 1))
	if ok, _, _ := l.Take("k", lim); !ok {
		t.Fatal("next day refused")
	}
}

func TestLimitTakeAllIsAllOrNothing(t *testing.T) {
	clk := newFakeClock(at(9, 0, 0))
	l := NewLimiter(clk.now)
	user, agent := Limit{PerMinute: 5}, Limit{PerDay: 1}
	if ok, _, _, _ := l.TakeAll([]string{"user", "agent"}, []Limit{user, agent}); !ok {
		t.Fatal("first call refused")
	}
	ok, retry, key, window := l.TakeAll([]string{"user", "agent"}, []Limit{user, agent})
	if ok || key != "agent" || window != "day" || retry != 15*time.Hour {
		t.Fatalf("second call: ok=%v key=%q window=%q retry=%v", ok, key, window, retry)
	}
	// The refused call took nothing from "user": four more fit, not three.
	for i := range 4 {
		if ok, _, _ := l.Take("user", user); !ok {
			t.Fatalf("user call %d refused", i+2)
		}
	}
	if ok, _, _ := l.Take("user", user); ok {
		t.Fatal("user allowed a 6th call")
	}
	// When several refuse, the one that resets last is reported.
	_, retry, key, window = l.TakeAll([]string{"user", "agent"}, []Limit{user, agent})
	if key != "agent" || window != "day" || retry != 15*time.Hour {
		t.Fatalf("both refuse: key=%q window=%q retry=%v", key, window, retry)
	}
	// A key listed twice counts twice.
	if ok, _, _, _ := l.TakeAll([]string{"d", "d"}, []Limit{{PerMinute: 1}, {PerMinute: 1}}); ok {
		t.Fatal("a doubled key took two calls from a budget of one")
	}
	if ok, _, _ := l.Take("d", Limit{PerMinute: 1}); !ok {
		t.Fatal("the refused doubled take consumed the budget")
	}
}

func TestLimitPrunesOldKeys(t *testing.T) {
	clk := newFakeClock(at(8, 0, 0))
	l := NewLimiter(clk.now)
	take := func(prefix string, lim Limit) {
		for i := range 1000 { // enough keys to reach every shard
			l.Take(fmt.Sprintf("%s%d", prefix, i), lim)
		}
	}
	take("m", Limit{PerMinute: 10})
	take("d", Limit{PerDay: 10})
	if n := keysHeld(l, ""); n != 2000 {
		t.Fatalf("%d keys held, want 2000", n)
	}
	// A minute on, calls sweep their shards: minute-only keys go, keys
	// with calls counted today stay.
	clk.add(time.Minute)
	take("s", Limit{PerMinute: 10})
	if m, d := keysHeld(l, "m"), keysHeld(l, "d"); m != 0 || d != 1000 {
		t.Fatalf("after a minute: %d minute keys, %d day keys held; want 0 and 1000", m, d)
	}
	clk.add(24 * time.Hour)
	take("x", Limit{PerMinute: 10})
	if n := keysHeld(l, ""); n != 1000 {
		t.Fatalf("%d keys held a day later, want 1000", n)
	}
}
