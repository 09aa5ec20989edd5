package l2

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/cachee/cachee/store"
)

// Effect says what a write does to the L1 copies of its keys once L2 has run it.
// The authoritative copy is L2's: every write runs there first.
type Effect uint8

const (
	// Drop deletes the L1 copies (DEL, APPEND, SETRANGE, EXPIRE, ...): the next read
	// fetches the value L2 computed.
	Drop Effect = iota
	// StoreIfOK stores Values[i] under Keys[i] if L2 answered OK or 1 (SET, SETNX,
	// SETEX, MSET, MSETNX); otherwise (NX or XX not met) L1 is left alone.
	StoreIfOK
	// StoreAlways stores Values[i] under Keys[i] whatever L2 answered (GETSET).
	StoreAlways
	// StoreReply stores L2's reply under Keys[0] (INCR's integer, INCRBYFLOAT's and
	// GETEX's string); a nil reply drops it.
	StoreReply
	// None leaves L1 alone: a read-only command answered by L2 (TTL, PTTL).
	None
)

// Write is one command for L2 and its effect on L1.
type Write struct {
	Args   [][]byte // the command, name first, as a client sent it
	KeyAt  []int    // indexes in Args of the keys it touches, in order
	Values [][]byte // StoreIfOK, StoreAlways: the value written under each key
	Effect Effect

	pttl []int64 // each key's PTTL after the write, as L2 reported it
}

func (w *Write) key(i int) []byte { return w.Args[w.KeyAt[i]] }

// Reply is L2's answer to a Write.
type Reply struct {
	Kind  ReplyKind
	Int   int64
	Str   []byte  // ReplyStr: the string; ReplyErr: the message ("WRONGTYPE ...")
	Array []Reply // ReplyArray (a map's keys and values alternate)
}

// ReplyKind is the RESP type of a Reply.
type ReplyKind uint8

const (
	ReplyNil ReplyKind = iota
	ReplyInt
	ReplyStr
	ReplyErr
	ReplyArray
)

// ErrCrossSlot is a write whose keys live in different Redis Cluster slots, which
// Redis cannot run as one command either.
var ErrCrossSlot = errors.New("CROSSSLOT Keys in request don't hash to the same slot")

// WriteAsync runs w on another goroutine and calls done with L2's reply, or an error
// wrapping tier.ErrL2Unavailable when L2 could not be asked or did not answer within
// --l2-timeout (L1's copies of the keys are then dropped, since L2 may or may not have
// applied it). w's slices are copied.
func (t *Tier) WriteAsync(w Write, done func(Reply, error)) {
	cp := Write{Args: make([][]byte, len(w.Args)), KeyAt: append([]int(nil), w.KeyAt...), Effect: w.Effect}
	for i, a := range w.Args {
		cp.Args[i] = append([]byte(nil), a...)
	}
	for _, v := range w.Values {
		cp.Values = append(cp.Values, append([]byte(nil), v...))
	}
	go func() {
		r, err := t.write([]*Write{&cp})
		done(r[0], err[0])
	}()
}

// Do runs w in L2 and applies its effect to L1, as WriteAsync does, on the calling
// goroutine.
func (t *Tier) Do(w Write) (Reply, error) {
	r, err := t.write([]*Write{&w})
	return r[0], err[0]
}

// write runs ws in one pipeline: each a MULTI/EXEC with a PTTL of each key when its
// effect stores (to learn the TTL to cap L1's copy with, and to be tracked again:
// our own write took the key out of Redis's tracking table), or the bare command.
func (t *Tier) write(ws []*Write) ([]Reply, []error) {
	replies := make([]Reply, len(ws))
	errs := make([]error, len(ws))
	data, _ := t.clientsNow()

	// Register every key first, so that reads in flight for them do not fill L1 with
	// what was there before.
	ops := make([][]op, len(ws))
	t.mu.Lock()
	for i, w := range ws {
		if w.Effect == None {
			continue
		}
		for j := range w.KeyAt {
			k := string(w.key(j))
			t.neg.del(k)
			ops[i] = append(ops[i], t.begin(k))
		}
	}
	t.mu.Unlock()

	if !t.up.Load() || data == nil {
		for i := range ws {
			errs[i] = unavailable(errDown)
		}
		t.m.errors.WithLabelValues("write", "down").Inc()
	} else {
		t.send(data, ws, replies, errs)
	}

	t.mu.Lock()
	for i, w := range ws {
		for j, o := range ops[i] {
			fill := t.end(o)
			key := []byte(o.key)
			r := replies[i]
			switch {
			case errs[i] != nil || r.Kind == ReplyErr || w.Effect == Drop:
				t.st.Delete(key)
			case w.Effect == StoreIfOK && !(r.Kind == ReplyStr && string(r.Str) == "OK" || r.Kind == ReplyInt && r.Int == 1):
				// Not stored in L2 (NX/XX): L1's copy, if any, is still tracked and current.
			case !fill || w.pttl[j] == -2:
				t.st.Delete(key)
			case w.Effect == StoreReply:
				if r.Kind == ReplyNil {
					t.st.Delete(key)
				} else if r.Kind == ReplyInt {
					t.fillLocked(o.key, strconv.AppendInt(nil, r.Int, 10), w.pttl[j])
				} else {
					t.fillLocked(o.key, r.Str, w.pttl[j])
				}
			default: // StoreIfOK (stored), StoreAlways
				t.fillLocked(o.key, w.Values[j], w.pttl[j])
			}
		}
	}
	t.mu.Unlock()
	return replies, errs
}

// send runs ws on L2, filling replies and errs, and each w.pttl. A standalone L2 gets
// one pipeline (cut into pieces of at most maxPipeline commands, at Write
// boundaries); a cluster gets one pipeline per slot, concurrently, because rueidis
// routes a pipeline holding a MULTI/EXEC to a single node. Its phases: build each
// write's commands, group the writes into pipelines, run them, count the outcomes.
func (t *Tier) send(data rueidis.Client, ws []*Write, replies []Reply, errs []error) {
	perWrite := t.commands(data, ws, replies)
	groups := t.pipelines(ws, perWrite)
	if len(groups) == 0 {
		return
	}
	t.runPipelines(data, ws, perWrite, groups, replies, errs)
	t.countWrites(ws, perWrite, replies, errs)
}

// commands builds each write's commands: the bare command, or a MULTI/EXEC with a
// PTTL of each key when its effect stores. A cluster write across slots gets
// ErrCrossSlot as its reply and no commands.
func (t *Tier) commands(data rueidis.Client, ws []*Write, replies []Reply) []rueidis.Commands {
	perWrite := make([]rueidis.Commands, len(ws))
	for i, w := range ws {
		w.pttl = make([]int64, len(w.KeyAt))
		if t.ep.Cluster && !sameSlot(w) {
			replies[i] = Reply{Kind: ReplyErr, Str: []byte(ErrCrossSlot.Error())}
			continue
		}
		stores := w.Effect == StoreIfOK || w.Effect == StoreAlways || w.Effect == StoreReply
		if stores {
			perWrite[i] = append(perWrite[i], data.B().Multi().Build())
		}
		perWrite[i] = append(perWrite[i], build(data, w))
		if stores {
			for j := range w.KeyAt {
				perWrite[i] = append(perWrite[i], data.B().Pttl().Key(string(w.key(j))).Build())
			}
			perWrite[i] = append(perWrite[i], data.B().Exec().Build())
		}
	}
	return perWrite
}

// pipelines groups the writes that have commands into pipelines, as indexes into ws:
// one per slot on a cluster, pieces of at most maxPipeline commands otherwise.
func (t *Tier) pipelines(ws []*Write, perWrite []rueidis.Commands) [][]int {
	var groups [][]int
	if t.ep.Cluster {
		bySlot := map[uint16]int{}
		for i, w := range ws {
			if perWrite[i] == nil {
				continue
			}
			slot := uint16(0)
			if len(w.KeyAt) > 0 {
				slot = Slot(w.key(0))
			}
			g, ok := bySlot[slot]
			if !ok {
				g = len(groups)
				bySlot[slot] = g
				groups = append(groups, nil)
			}
			groups[g] = append(groups[g], i)
		}
		return groups
	}
	var g []int
	n := 0
	for i := range ws {
		if perWrite[i] == nil {
			continue
		}
		if n+len(perWrite[i]) > maxPipeline && len(g) > 0 {
			groups = append(groups, g)
			g, n = nil, 0
		}
		g = append(g, i)
		n += len(perWrite[i])
	}
	if len(g) > 0 {
		groups = append(groups, g)
	}
	return groups
}

// runPipelines sends the pipelines concurrently, within --l2-timeout, and reads each
// write's reply out of its pipeline's results.
func (t *Tier) runPipelines(data rueidis.Client, ws []*Write, perWrite []rueidis.Commands, groups [][]int, replies []Reply, errs []error) {
	ctx, cancel := context.WithTimeout(context.Background(), t.cfg.Timeout)
	defer cancel()
	t0 := time.Now()
	var wg sync.WaitGroup
	for _, g := range groups {
		wg.Go(func() {
			var cmds rueidis.Commands
			for _, i := range g {
				cmds = append(cmds, perWrite[i]...)
			}
			res := data.DoMulti(ctx, cmds...)
			at := 0
			for _, i := range g {
				rs := res[at : at+len(perWrite[i])]
				at += len(perWrite[i])
				if len(rs) == 1 { // the bare command
					replies[i], errs[i] = toReply(rs[0])
				} else {
					replies[i], errs[i] = execReply(rs, ws[i])
				}
			}
		})
	}
	wg.Wait()
	t.m.writeSeconds.Observe(time.Since(t0).Seconds())
}

// countWrites counts the writes sent by outcome, makes a failed one's error wrap
// tier.ErrL2Unavailable, and makes L2 suspect after a network failure.
func (t *Tier) countWrites(ws []*Write, perWrite []rueidis.Commands, replies []Reply, errs []error) {
	netFailed := false
	for i := range ws {
		if perWrite[i] == nil {
			continue
		}
		switch {
		case errs[i] != nil:
			netFailed = netFailed || !errorsIsDeadline(errs[i])
			t.m.errors.WithLabelValues("write", reason(errs[i])).Inc()
			t.m.writes.WithLabelValues("failed").Inc()
			errs[i] = unavailable(errs[i])
		case replies[i].Kind == ReplyErr:
			t.m.writes.WithLabelValues("rejected").Inc()
		default:
			t.m.writes.WithLabelValues("ok").Inc()
		}
	}
	if netFailed {
		t.suspect()
	}
}

// execReply reads [MULTI, cmd, PTTL..., EXEC]: the command's reply and each key's
// PTTL come in EXEC's array; an error queuing the command aborts EXEC, and the
// command's own error is the answer.
func execReply(rs []rueidis.RedisResult, w *Write) (Reply, error) {
	if err := rs[1].Error(); err != nil && !isNetErr(err) {
		return toReply(rs[1])
	}
	arr, err := rs[len(rs)-1].ToArray()
	if err != nil {
		if isNetErr(err) {
			return Reply{}, err
		}
		return toReply(rs[len(rs)-1])
	}
	if len(arr) != 1+len(w.KeyAt) {
		return Reply{Kind: ReplyErr, Str: []byte("ERR unexpected EXEC reply from L2")}, nil
	}
	for j := range w.KeyAt {
		w.pttl[j], _ = arr[1+j].AsInt64()
	}
	return messageReply(&arr[0]), nil
}

func toReply(r rueidis.RedisResult) (Reply, error) {
	m, err := r.ToMessage()
	if err != nil {
		if re, ok := rueidis.IsRedisErr(err); ok {
			if re.IsNil() {
				return Reply{Kind: ReplyNil}, nil
			}
			return Reply{Kind: ReplyErr, Str: []byte(re.Error())}, nil
		}
		return Reply{}, err
	}
	return messageReply(&m), nil
}

func messageReply(m *rueidis.RedisMessage) Reply {
	if err := m.Error(); err != nil {
		if rueidis.IsRedisNil(err) {
			return Reply{Kind: ReplyNil}
		}
		return Reply{Kind: ReplyErr, Str: []byte(err.Error())}
	}
	if n, err := m.AsInt64(); err == nil && m.IsInt64() {
		return Reply{Kind: ReplyInt, Int: n}
	}
	if m.IsMap() {
		kv, _ := m.ToMap()
		r := Reply{Kind: ReplyArray}
		for k, v := range kv {
			r.Array = append(r.Array, Reply{Kind: ReplyStr, Str: []byte(k)}, messageReply(&v))
		}
		return r
	}
	if m.IsArray() {
		arr, _ := m.ToArray()
		r := Reply{Kind: ReplyArray, Array: make([]Reply, len(arr))}
		for i := range arr {
			r.Array[i] = messageReply(&arr[i])
		}
		return r
	}
	if b, err := m.AsBool(); err == nil && m.IsBool() {
		if b {
			return Reply{Kind: ReplyInt, Int: 1}
		}
		return Reply{Kind: ReplyInt}
	}
	if s, err := m.ToString(); err == nil {
		return Reply{Kind: ReplyStr, Str: []byte(s)}
	}
	if f, err := m.AsFloat64(); err == nil {
		return Reply{Kind: ReplyStr, Str: strconv.AppendFloat(nil, f, 'g', -1, 64)}
	}
	return Reply{Kind: ReplyErr, Str: []byte("ERR unexpected reply type from L2")}
}

// build turns w into a rueidis command, marking its keys so that a cluster client
// sends it to the node that owns them.
func build(c rueidis.Client, w *Write) rueidis.Completed {
	a := c.B().Arbitrary(string(w.Args[0]))
	k := 0
	for i := 1; i < len(w.Args); i++ {
		if k < len(w.KeyAt) && w.KeyAt[k] == i {
			a = a.Keys(string(w.Args[i]))
			k++
		} else {
			a = a.Args(string(w.Args[i]))
		}
	}
	return a.Build()
}

func sameSlot(w *Write) bool {
	for j := 1; j < len(w.KeyAt); j++ {
		if Slot(w.key(j)) != Slot(w.key(0)) {
			return false
		}
	}
	return true
}

func errorsIsDeadline(err error) bool { return errors.Is(err, context.DeadlineExceeded) }

func storeTTL(ttl time.Duration) store.SetOptions { return store.SetOptions{TTL: ttl} }

// Set implements tier.Tier. With write-through it runs SET in L2 (with the TTL,
// expiry and condition given) and then stores the value in L1; otherwise only in L1.
func (t *Tier) Set(_ context.Context, key, value []byte, opt store.SetOptions) (bool, error) {
	if !t.WriteThrough() {
		return t.st.Set(key, value, opt)
	}
	r, err := t.Do(setWrite(key, value, opt))
	return setResult(r, err)
}

// SetMany implements tier.Tier: one pipeline to L2 for all items.
func (t *Tier) SetMany(_ context.Context, items []store.Item, stored []bool) []error {
	if !t.WriteThrough() {
		return t.st.SetMany(items, stored)
	}
	ws := make([]*Write, len(items))
	for i, it := range items {
		w := setWrite(it.Key, it.Value, it.Options)
		ws[i] = &w
	}
	replies, errs := t.write(ws)
	var out []error
	for i := range items {
		ok, err := setResult(replies[i], errs[i])
		stored[i] = ok
		if err != nil {
			if out == nil {
				out = make([]error, len(items))
			}
			out[i] = err
		}
	}
	return out
}

// Delete implements tier.Tier: with write-through, DEL in L2 and then in L1 (and
// the answer is L2's); otherwise in L1 only.
func (t *Tier) Delete(_ context.Context, key []byte) (bool, error) {
	if !t.WriteThrough() {
		return t.st.Delete(key)
	}
	r, err := t.Do(Write{Args: [][]byte{[]byte("DEL"), key}, KeyAt: []int{1}, Effect: Drop})
	if err != nil {
		return false, err
	}
	if r.Kind == ReplyErr {
		return false, unavailable(errors.New(string(r.Str)))
	}
	return r.Int > 0, nil
}

func setWrite(key, value []byte, opt store.SetOptions) Write {
	args := [][]byte{[]byte("SET"), key, value}
	switch {
	case !opt.ExpireAt.IsZero():
		args = append(args, []byte("PXAT"), strconv.AppendInt(nil, opt.ExpireAt.UnixMilli(), 10))
	case opt.TTL > 0:
		args = append(args, []byte("PX"), strconv.AppendInt(nil, max(opt.TTL.Milliseconds(), 1), 10))
	case opt.KeepTTL:
		args = append(args, []byte("KEEPTTL"))
	}
	switch opt.Cond {
	case store.IfAbsent:
		args = append(args, []byte("NX"))
	case store.IfPresent:
		args = append(args, []byte("XX"))
	}
	return Write{Args: args, KeyAt: []int{1}, Values: [][]byte{value}, Effect: StoreIfOK}
}

func setResult(r Reply, err error) (bool, error) {
	switch {
	case err != nil:
		return false, err
	case r.Kind == ReplyErr:
		return false, unavailable(errors.New(string(r.Str)))
	}
	return r.Kind == ReplyStr, nil
}

// WriteManyAsync runs ws in one pipeline on another goroutine, as WriteAsync does for
// one, and calls done with each one's reply and error.
func (t *Tier) WriteManyAsync(ws []Write, done func([]Reply, []error)) {
	cp := make([]*Write, len(ws))
	for i, w := range ws {
		c := Write{Args: make([][]byte, len(w.Args)), KeyAt: append([]int(nil), w.KeyAt...), Effect: w.Effect}
		for j, a := range w.Args {
			c.Args[j] = append([]byte(nil), a...)
		}
		for _, v := range w.Values {
			c.Values = append(c.Values, append([]byte(nil), v...))
		}
		cp[i] = &c
	}
	go func() { done(t.write(cp)) }()
}

// TxAsync runs cmds in L2 as one MULTI/EXEC (how a RESP client's transaction runs
// with write-through: L2 holds the authoritative copies, and only it can run the
// commands atomically against everyone's writes), then drops L1's copies of every key
// they name. done gets each command's reply, a nil slice if L2 aborted the
// transaction, or an error wrapping tier.ErrL2Unavailable.
func (t *Tier) TxAsync(cmds []Write, done func([]Reply, error)) {
	cp := make([]Write, len(cmds))
	for i, w := range cmds {
		cp[i] = Write{Args: make([][]byte, len(w.Args)), KeyAt: append([]int(nil), w.KeyAt...)}
		for j, a := range w.Args {
			cp[i].Args[j] = append([]byte(nil), a...)
		}
	}
	go func() { done(t.tx(cp)) }()
}

func (t *Tier) tx(cmds []Write) ([]Reply, error) {
	data, _ := t.clientsNow()
	var ops []op
	t.mu.Lock()
	for i := range cmds {
		for j := range cmds[i].KeyAt {
			k := string(cmds[i].key(j))
			t.neg.del(k)
			ops = append(ops, t.begin(k))
		}
	}
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		for _, o := range ops {
			t.end(o)
			t.st.Delete([]byte(o.key))
		}
		t.mu.Unlock()
	}()
	if !t.up.Load() || data == nil {
		t.m.errors.WithLabelValues("write", "down").Inc()
		return nil, unavailable(errDown)
	}
	if t.ep.Cluster {
		var first []byte
		for i := range cmds {
			for j := range cmds[i].KeyAt {
				if first == nil {
					first = cmds[i].key(j)
				} else if Slot(cmds[i].key(j)) != Slot(first) {
					rs := make([]Reply, len(cmds))
					for k := range rs {
						rs[k] = Reply{Kind: ReplyErr, Str: []byte(ErrCrossSlot.Error())}
					}
					return rs, nil
				}
			}
		}
	}
	multi := make(rueidis.Commands, 0, len(cmds)+2)
	multi = append(multi, data.B().Multi().Build())
	for i := range cmds {
		multi = append(multi, build(data, &cmds[i]))
	}
	multi = append(multi, data.B().Exec().Build())
	ctx, cancel := context.WithTimeout(context.Background(), t.cfg.Timeout)
	defer cancel()
	t0 := time.Now()
	res := data.DoMulti(ctx, multi...)
	t.m.writeSeconds.Observe(time.Since(t0).Seconds())
	// A command refused while queuing makes EXEC fail with EXECABORT; report each
	// command's own answer, as Redis's client would have seen them.
	exec := res[len(res)-1]
	arr, err := exec.ToArray()
	switch {
	case err != nil && isNetErr(err):
		t.m.errors.WithLabelValues("write", reason(err)).Inc()
		t.m.writes.WithLabelValues("failed").Inc()
		t.suspect()
		return nil, unavailable(err)
	case rueidis.IsRedisNil(err):
		return nil, nil
	case err != nil:
		rs := make([]Reply, len(cmds))
		for i := range cmds {
			if r, _ := toReply(res[1+i]); r.Kind == ReplyErr {
				rs[i] = r
			} else {
				rs[i], _ = toReply(exec)
			}
		}
		t.m.writes.WithLabelValues("rejected").Inc()
		return rs, nil
	}
	t.m.writes.WithLabelValues("ok").Inc()
	rs := make([]Reply, len(arr))
	for i := range arr {
		rs[i] = messageReply(&arr[i])
	}
	return rs, nil
}
