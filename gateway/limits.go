package gateway

import (
	"hash/maphash"
	"sync"
	"time"
)

// Limit is a budget: at most PerMinute calls in each calendar minute and
// PerDay in each UTC day; zero means no limit for that window.
type Limit struct {
	PerMinute int `json:"per_minute" yaml:"per_minute"`
	PerDay    int `json:"per_day" yaml:"per_day"`
}

// Limiter counts calls against budgets in fixed windows. It is safe for
// concurrent use.
type Limiter struct {
	now    func() time.Time
	seed   maphash.Seed
	shards [limiterShards]limiterShard
}

// limiterShards spreads keys over independently locked maps so unrelated
// callers do not contend.
const limiterShards = 32

type limiterShard struct {
	mu     sync.Mutex
	m      map[string]*budgetCounter
	pruned int64 // the minute this shard was last swept
}

// budgetCounter holds one key's current windows. A window's count only applies
// while its index (Unix minute or day) is current.
type budgetCounter struct {
	minute, day  int64
	inMin, inDay int
}

// NewLimiter returns a Limiter reading the time from now (nil means time.Now).
func NewLimiter(now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	l := &Limiter{now: now, seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].m = map[string]*budgetCounter{}
	}
	return l
}

// Take counts one call against key if every window still has room,
// atomically: a refused call consumes nothing. retryAfter is the time until
// the refusing window resets, rounded up to a whole second, at least 1s.
func (l *Limiter) Take(key string, lim Limit) (ok bool, retryAfter time.Duration, window string) {
	ok, retryAfter, _, window = l.TakeAll([]string{key}, []Limit{lim})
	return ok, retryAfter, window
}

// TakeAll takes from every (keys[i], lims[i]) pair or from none. When some
// refuse, it reports the one whose window resets last, since retrying before
// then cannot succeed. A key may appear more than once; each occurrence
// counts.
func (l *Limiter) TakeAll(keys []string, lims []Limit) (ok bool, retryAfter time.Duration, refusedKey, window string) {
	if len(keys) != len(lims) {
		panic("gateway: TakeAll needs one Limit per key")
	}
	now := l.now()
	sec := now.Unix()
	minute, day := floorDiv(sec, 60), floorDiv(sec, 86400)

	// Lock each shard involved once, in index order, so concurrent TakeAlls
	// cannot deadlock; the check and the commit then see one state.
	var held [limiterShards]bool
	var idxBuf [4]int
	var csBuf [4]*budgetCounter
	idx := append(idxBuf[:0], make([]int, len(keys))...)
	for i, k := range keys {
		if lims[i].PerMinute > 0 || lims[i].PerDay > 0 {
			idx[i] = int(maphash.String(l.seed, k) % limiterShards)
			held[idx[i]] = true
		}
	}
	for i := range held {
		if held[i] {
			l.shards[i].mu.Lock()
			defer l.shards[i].mu.Unlock()
		}
	}

	cs := append(csBuf[:0], make([]*budgetCounter, len(keys))...)
	for i, k := range keys {
		lim := lims[i]
		if lim.PerMinute <= 0 && lim.PerDay <= 0 {
			continue // unlimited: nothing to count
		}
		sh := &l.shards[idx[i]]
		sh.prune(minute, day)
		c := sh.m[k]
		if c == nil {
			c = &budgetCounter{minute: minute, day: day}
			sh.m[k] = c
		}
		c.roll(minute, day)
		cs[i] = c
		// Earlier occurrences of the same key in this call are pending.
		inMin, inDay := c.inMin, c.inDay
		for j, p := range cs[:i] {
			if p == c && lims[j].PerMinute > 0 {
				inMin++
			}
			if p == c && lims[j].PerDay > 0 {
				inDay++
			}
		}
		var reset int64
		var w string
		switch {
		case lim.PerDay > 0 && inDay >= lim.PerDay:
			reset, w = (day+1)*86400, "day"
		case lim.PerMinute > 0 && inMin >= lim.PerMinute:
			reset, w = (minute+1)*60, "minute"
		default:
			continue
		}
		if d := untilReset(now, reset); window == "" || d > retryAfter {
			retryAfter, refusedKey, window = d, k, w
		}
	}
	if window != "" {
		return false, retryAfter, refusedKey, window
	}
	for i, c := range cs {
		if c == nil {
			continue
		}
		if lims[i].PerMinute > 0 {
			c.inMin++
		}
		if lims[i].PerDay > 0 {
			c.inDay++
		}
	}
	return true, 0, "", ""
}

// roll starts new windows once their period has passed. A clock that steps
// back keeps the newer window rather than granting a fresh one.
func (c *budgetCounter) roll(minute, day int64) {
	if minute > c.minute {
		c.minute, c.inMin = minute, 0
	}
	if day > c.day {
		c.day, c.inDay = day, 0
	}
}

// prune drops, at most once a minute, keys with nothing counted in a
// current window, keeping memory proportional to the keys active today.
func (sh *limiterShard) prune(minute, day int64) {
	if minute <= sh.pruned {
		return
	}
	sh.pruned = minute
	for k, c := range sh.m {
		if (c.inMin == 0 || c.minute < minute) && (c.inDay == 0 || c.day < day) {
			delete(sh.m, k)
		}
	}
}

// untilReset is the wait from now to the Unix second reset, rounded up to a
// whole second and at least one.
func untilReset(now time.Time, reset int64) time.Duration {
	d := time.Unix(reset, 0).Sub(now)
	secs := (d + time.Second - 1) / time.Second
	return max(secs, 1) * time.Second
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
