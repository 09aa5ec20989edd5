package store

import "math"

// The window's share of cachee-lfu is chosen by simulation: a few miniature copies of the
// policy (shadows), each with a fixed window share, replay a sample of the keys and count
// their hits; the policy follows the share whose shadow has been doing best. A recency
// workload, where keys come back soon or never, makes the large windows win; a skewed
// one, where the sketch's judgement pays, the small ones. The shadows sample keys by
// hash, so that each sees every access of the keys it follows, and are scaled to the
// real cache by the same rate: a shadow of c entries fed 1 key in r stands for a cache
// of c·r entries.
//
// They share the real sketch for admission (a sampled key's frequency is its real one)
// and hold only tags, in writer-private memory of bounded size: about 16 KiB a shadow up
// to 65,536 entries of cache, growing to 64 KiB for caches of 262,144 entries or more.

// windowFractions are the window shares the shadows run: Caffeine's default, and steps
// towards an LRU with a frequency-filtered tail. The largest is two thirds rather than
// 80%: on workloads whose phases favour recency and frequency by turns (ARC's
// p3 at 100,000 to 200,000 entries) the tuner moves between the two largest shares, and a
// smaller step between them loses less in each move than the larger top share gains
// (p3 at 200,000 entries, 9 seeds: 58.1 with 80%, 59.3 with 67%; LRU 59.35). Below two
// thirds, recency traces lose their last point against LRU (lirs/sprite at 1,000
// entries: 89.9 with 67%, 89.5-89.9 with 65%, 90.3 with 80%; LRU 90.6).
var windowFractions = [...]float64{0.01, 0.1, 0.3, 0.67}

// WindowShares are the shares of the cache that cachee-lfu chooses among for its recency
// window, smallest first: the smallest when frequency pays, the largest when recency does.
func WindowShares() []float64 { return append([]float64(nil), windowFractions[:]...) }

const (
	// A shadow holds at most shadowMinEntries entries, or 1/2^shadowRateLog of the cache's
	// when that is more, up to shadowEntries. Replaying every access exactly costs several
	// times a store's own work, so small caches are sampled as soon as they outgrow the
	// smallest shadow; only caches so large that they sample at most one key in
	// 2^shadowRateLog anyway get larger shadows, whose judgements rest on more keys.
	shadowMinEntries = 1024
	shadowEntries    = 4096
	shadowRateLog    = 6
	// A shadow's score decays by this at each judgement (every tunerEpoch sampled accesses
	// per shadow entry), so that it weighs the recent workload more. A shadow that samples
	// keys judges a cache of more than shadowMinEntries entries, whose epoch holds thousands
	// of accesses on which the shares differ: it can afford the shorter memory, and needs
	// it to follow a workload's phases as they come.
	tunerDecay        = 0.8
	tunerSampledDecay = 0.5
	// tunerSigmas is how many standard deviations of chance a lead must exceed.
	tunerSigmas = 2
	tunerEpoch  = 2
	// tunerMargin is how much better, besides chance, another share's score must be to
	// switch to it, for shadows that replay every access. Sampling shadows need no more
	// than the chance test on the accesses where the shares differ: 1% of the hits is
	// most of a point at a high hit rate, more than most shares differ by (lirs/sprite
	// at 2,000 entries: 92.7% with it, 93.1% without, LRU 93.5%; arc/p3 at 200,000:
	// 58.8% and 59.4%, LRU 59.35%; repeatable replays, seeds 1-5 and 1-3).
	tunerMargin = 0.01
	// A judgement counts only when the cache is this full: before that every share hits
	// alike.
	tunerFullPercent = 90
	maxRateLog       = 31 // tags have 32 bits
)

type shadowEntry struct {
	tag        uint32
	prev, next uint16 // indices into shadow.ents; 0 is none
	q          uint8
}

type shadowList struct {
	head, tail uint16
	n          int
}

// shadow is a miniature W-TinyLFU: window, probation and protected LRU lists over entries
// found by tag in an open-addressed table.
type shadow struct {
	fraction             float64
	cap, winCap, protCap int
	ents                 []shadowEntry // ents[0] is unused: index 0 means none
	free                 uint16
	used                 int
	lists                [qProtected + 1]shadowList // by queue
	table                []uint16                   // linear probing; 0 is empty
	hits                 uint64                     // since the last judgement
	score                float64
	sk                   *sketch
}

func newShadow(fraction float64, sk *sketch) *shadow {
	s := &shadow{fraction: fraction, sk: sk}
	s.alloc(shadowMinEntries)
	s.reset()
	return s
}

// alloc makes room for c entries, c a power of two: one spare, as an access inserts
// before it evicts, and a table twice that size.
func (s *shadow) alloc(c int) {
	s.ents = make([]shadowEntry, c+2)
	s.table = make([]uint16, 2*c)
}

// room is how many entries the shadow has room for.
func (s *shadow) room() int { return len(s.ents) - 2 }

// grow makes room for c entries, keeping those held.
func (s *shadow) grow(c int) {
	n := s.room()
	if c <= n {
		return
	}
	for n < c {
		n *= 2
	}
	old := s.ents
	s.alloc(n)
	copy(s.ents, old)
	for i := len(s.ents) - 1; i >= len(old); i-- {
		s.ents[i].next = s.free
		s.free = uint16(i)
	}
	for q := qWindow; q <= qProtected; q++ {
		for x := s.lists[q].head; x != 0; x = s.ents[x].next {
			i, _ := s.find(s.ents[x].tag)
			s.table[i] = x
		}
	}
}

func (s *shadow) reset() {
	clear(s.ents)
	clear(s.table)
	s.lists = [qProtected + 1]shadowList{}
	s.used, s.free, s.hits, s.score = 0, 0, 0, 0
	for i := len(s.ents) - 1; i >= 1; i-- {
		s.ents[i].next = s.free
		s.free = uint16(i)
	}
	s.setCap(s.room())
}

func (s *shadow) setCap(c int) {
	c = max(1, min(c, shadowEntries))
	s.grow(c)
	s.cap = c
	s.winCap = max(1, int(s.fraction*float64(c)+0.5))
	s.protCap = int(protectedShare * float64(c-min(s.winCap, c)))
	s.evict()
}

func (s *shadow) home(tag uint32) uint64 {
	return spread(uint64(tag)^0x5bd1e995) & uint64(len(s.table)-1)
}

// find returns the table slot of tag, or the empty slot where it would go, and its entry
// (0 if absent).
func (s *shadow) find(tag uint32) (uint64, uint16) {
	mask := uint64(len(s.table) - 1)
	for i := s.home(tag); ; i = (i + 1) & mask {
		x := s.table[i]
		if x == 0 || s.ents[x].tag == tag {
			return i, x
		}
	}
}

// tableDelete empties slot i, shifting back the entries after it that probed past it.
func (s *shadow) tableDelete(i uint64) {
	mask := uint64(len(s.table) - 1)
	for j := (i + 1) & mask; s.table[j] != 0; j = (j + 1) & mask {
		k := s.home(s.ents[s.table[j]].tag)
		// The entry at j may move to i unless its home lies cyclically in (i, j].
		if (j > i && (k <= i || k > j)) || (j < i && k <= i && k > j) {
			s.table[i] = s.table[j]
			i = j
		}
	}
	s.table[i] = 0
}

func (s *shadow) unlink(x uint16) {
	e := &s.ents[x]
	l := &s.lists[e.q]
	if e.prev != 0 {
		s.ents[e.prev].next = e.next
	} else {
		l.head = e.next
	}
	if e.next != 0 {
		s.ents[e.next].prev = e.prev
	} else {
		l.tail = e.prev
	}
	l.n--
}

func (s *shadow) push(x uint16, q uint8) {
	e := &s.ents[x]
	l := &s.lists[q]
	e.q = q
	e.prev, e.next = l.tail, 0
	if l.tail != 0 {
		s.ents[l.tail].next = x
	} else {
		l.head = x
	}
	l.tail = x
	l.n++
}

// access replays one access and tells whether it hit: a hit moves the entry as the real
// policy would, a miss inserts it into the window and evicts.
func (s *shadow) access(tag uint32) bool {
	i, x := s.find(tag)
	if x != 0 {
		s.hits++
		q := s.ents[x].q
		s.unlink(x)
		if q == qWindow {
			s.push(x, qWindow)
			return true
		}
		s.push(x, qProtected)
		for s.lists[qProtected].n > s.protCap {
			y := s.lists[qProtected].head
			s.unlink(y)
			s.push(y, qProbation)
		}
		return true
	}
	x = s.free
	s.free = s.ents[x].next
	s.ents[x] = shadowEntry{tag: tag}
	s.table[i] = x
	s.push(x, qWindow)
	s.used++
	s.evict()
	return false
}

func (s *shadow) drop(x uint16) {
	i, _ := s.find(s.ents[x].tag)
	s.tableDelete(i)
	s.unlink(x)
	s.ents[x] = shadowEntry{next: s.free}
	s.free = x
	s.used--
}

// evict passes the window's overflow to probation and, while over capacity, lets each
// candidate compete with probation's oldest on the sketch's frequency.
func (s *shadow) evict() {
	for s.lists[qWindow].n > s.winCap {
		c := s.lists[qWindow].head
		s.unlink(c)
		s.push(c, qProbation)
		if s.used <= s.cap {
			continue
		}
		v := s.lists[qProbation].head
		if v == c {
			if v = s.lists[qProtected].head; v == 0 {
				s.drop(c)
				continue
			}
		}
		if s.sk.frequency(uint64(s.ents[c].tag)) > s.sk.frequency(uint64(s.ents[v].tag)) {
			s.drop(v)
		} else {
			s.drop(c)
		}
	}
	for s.used > s.cap {
		v := s.lists[qProbation].head
		if v == 0 {
			v = s.lists[qProtected].head
		}
		if v == 0 {
			v = s.lists[qWindow].head
		}
		s.drop(v)
	}
}

// keepSampled drops the entries of keys the tuner no longer samples.
func (s *shadow) keepSampled(t *windowTuner) {
	for q := qWindow; q <= qProtected; q++ {
		for x := s.lists[q].head; x != 0; {
			next := s.ents[x].next
			if !t.sampled(uint64(s.ents[x].tag)) {
				s.drop(x)
			}
			x = next
		}
	}
}

// windowTuner runs the shadows and picks the window share.
type windowTuner struct {
	shadows  [len(windowFractions)]*shadow
	rateLog  uint   // follow keys whose tag has its top rateLog bits zero; at most maxRateLog
	accesses uint64 // of sampled keys
	next     uint64 // accesses at the next judgement
	cur      int    // index of the share the policy follows
	// only[i][j] counts the sampled accesses on which shadow i hit and shadow j missed,
	// since the last judgement; apart holds them decayed like the scores. Two shares'
	// scores differ only by these accesses, so they, not all hits, measure the chance in
	// the difference.
	only  [len(windowFractions)][len(windowFractions)]uint32
	apart [len(windowFractions)][len(windowFractions)]float64
}

func (t *windowTuner) init(sk *sketch) {
	for i, f := range windowFractions {
		if t.shadows[i] == nil {
			t.shadows[i] = newShadow(f, sk)
		} else {
			t.shadows[i].reset()
		}
	}
	t.rateLog, t.accesses, t.next, t.cur = 0, 0, 0, 0
	t.only, t.apart = [len(windowFractions)][len(windowFractions)]uint32{}, [len(windowFractions)][len(windowFractions)]float64{}
}

func (t *windowTuner) fraction() float64 { return windowFractions[t.cur] }

// sampled tells whether the tuner follows the key with this tag: tags are hash bits, so
// the top rateLog bits being zero picks one key in 2^rateLog.
func (t *windowTuner) sampled(tag uint64) bool { return uint32(tag)>>(32-t.rateLog) == 0 }

// record replays an access of tag in the shadows if the tuner follows it.
func (t *windowTuner) record(tag uint64) {
	if t.sampled(tag) {
		t.replay(tag)
	}
}

// replay stays out of line so that record, on every access, inlines to the sampling test.
//
//go:noinline
func (t *windowTuner) replay(tag uint64) {
	t.accesses++
	var hits uint // bit i: shadow i hit
	for i, s := range t.shadows {
		if s.access(uint32(tag)) {
			hits |= 1 << i
		}
	}
	// Most accesses hit in every shadow or in none: nothing to count.
	if hits == 0 || hits == 1<<len(t.shadows)-1 {
		return
	}
	for i := range t.shadows {
		for j := range t.shadows {
			if hits>>i&1 == 1 && hits>>j&1 == 0 {
				t.only[i][j]++
			}
		}
	}
}

// judge, once enough sampled accesses have passed, scales the shadows to the cache
// (entries held in used of maximum), folds their hits into their scores and switches to
// the best share when it beats the current one by the margin.
func (t *windowTuner) judge(entries, used, maximum uint64) {
	if t.accesses < t.next || used == 0 || entries == 0 {
		return
	}
	t.scale(int(min(entries*maximum/used, 1<<40)))
	full := used*100 >= maximum*tunerFullPercent
	decay := tunerDecay
	if t.rateLog > 0 {
		decay = tunerSampledDecay
	}
	best := t.cur
	for i, s := range t.shadows {
		if full {
			s.score = decay*s.score + float64(s.hits)
		}
		s.hits = 0
		if s.score > t.shadows[best].score {
			best = i
		}
		for j := range t.only[i] {
			if full {
				t.apart[i][j] = decay*t.apart[i][j] + float64(t.only[i][j])
			}
			t.only[i][j] = 0
		}
	}
	// Two shadows' scores over the same accesses differ by chance by about the square root
	// of the accesses on which one hit and the other missed (as in McNemar's test), at most
	// that of the two scores' sum: a switch needs more than tunerSigmas of that, or a few
	// lucky hits would move the window. A sampling shadow judges on the accesses where the
	// shares differ, so that a steady lead of a few percent in a large cache, where they
	// mostly hit alike, shows; an exact one (a small cache, few hits, where a share's
	// switch costs most) on the bound.
	b, c := t.shadows[best].score, t.shadows[t.cur].score
	w, l, margin := b, c, c*tunerMargin
	if t.rateLog > 0 {
		w, l, margin = t.apart[best][t.cur], t.apart[t.cur][best], 0
	}
	if full && w-l > margin+tunerSigmas*math.Sqrt(w+l) {
		t.cur = best
	}
	t.next = t.accesses + uint64(tunerEpoch*t.shadows[0].cap)
}

// scale sets the sampling rate and the shadows' capacity for a cache of n entries.
func (t *windowTuner) scale(n int) {
	limit := min(shadowEntries, max(shadowMinEntries, n>>shadowRateLog))
	r := uint(0)
	for n>>r > limit && r < maxRateLog {
		r++
	}
	if r > t.rateLog {
		t.rateLog = r
		for _, s := range t.shadows {
			s.keepSampled(t)
		}
	}
	t.rateLog = r
	for _, s := range t.shadows {
		if c := max(1, n>>r); c != s.cap {
			s.setCap(c)
		}
	}
}
