package resp_test

import (
	"net"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cachee/cachee/server/resp"
	"github.com/cachee/cachee/store"
)

// startRedis starts a real redis-server on a free loopback port for the test, or skips
// the test if there is none on this machine.
func startRedis(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		missing(t, "redis-server not installed (Debian: apt-get install redis-server); skipping the comparison with Redis")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", t.TempDir(), "--logfile", "")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if i == 100 {
			t.Fatalf("redis-server did not start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// w splits a command on single spaces; "" arguments are written as ”.
func w(s string) []string {
	f := strings.Split(s, " ")
	for i, a := range f {
		if a == "''" {
			f[i] = ""
		}
	}
	return f
}

// diffScript is run against redis-server and cachee; every reply must be the same bytes.
var diffScript = [][]string{
	w("FLUSHALL"),
	w("PING"), w("PING hello"), w("PING a b"), w("ECHO hi"), w("ECHO"), w("ECHO a b"),
	w("GET"), w("GET a b"), w("SET k"), w("get missing"),
	w("SET k v"), w("GET k"), w("SET k v2 NX"), w("SET k v3 XX"), w("GET k"),
	w("SET k v NX XX"), w("SET k v XX NX"), w("SET k v EX"), w("SET k v EX 0"), w("SET k v EX -5"),
	w("SET k v EX abc"), w("SET k v PX 0"), w("SET k v EX 10 PX 100"), w("SET k v EX 10 KEEPTTL"),
	w("SET k v KEEPTTL EX 10"), w("SET k v EX 10 EX 20"), w("TTL k"), w("SET k v foo"),
	w("SET k v EX 9223372036854775807"), w("SET k v PX 9223372036854775807"), w("SET k v EXAT 0"),
	w("SET k v EX 1.5"), w("SET k v ex 100"), w("TTL k"), w("SET k v2 KEEPTTL"), w("TTL k"), w("SET k v3"), w("TTL k"),
	w("SET k old GET"), w("SET k new NX GET"), w("SET k2 new XX GET"), w("GET k2"), w("SET k3 x GET NX"),
	w("SET past v EXAT 1"), w("GET past"), w("SET past v PXAT 1000"), w("EXISTS past"),
	w("SETNX k x"), w("SETNX nk x"), w("SETNX"), w("GET nk"),
	w("SETEX sk 100 v"), w("TTL sk"), w("SETEX sk 0 v"), w("SETEX sk -1 v"), w("SETEX sk x v"), w("SETEX sk 10"),
	w("PSETEX pk 100000 v"), w("TTL pk"), w("PSETEX pk 0 v"), w("PSETEX pk x v"),
	w("GETSET k gs"), w("GETSET nothere gs"), w("GET nothere"),
	w("GETDEL k"), w("GETDEL k"), w("EXISTS k"), w("GETDEL"),
	w("SET g v"), w("GETEX g"), w("GETEX g EX 100"), w("TTL g"), w("GETEX g PERSIST"), w("TTL g"),
	w("GETEX g EX 0"), w("GETEX g EX x"), w("GETEX g PX 100 EX 10"), w("GETEX g PERSIST EX 10"), w("GETEX g FOO"),
	w("GETEX missing EX 0"), w("GETEX g NX"), w("GETEX g EXAT 1"), w("EXISTS g"),
	w("MSET a 1 b 2 c 3"), w("MGET a b c d"), w("MSET a"), w("MSET a 1 b"), w("MGET"),
	w("MSETNX a 1 z 2"), w("MSETNX y 1 z 2"), w("MGET y z"), w("MSETNX y"),
	w("DEL a b nothere"), w("DEL"), w("UNLINK c y"), w("EXISTS z z z nothere"), w("EXISTS"),
	w("SET e v"), w("EXPIRE e 100"), w("TTL e"), w("EXPIRE e 100 NX"), w("EXPIRE e 200 XX"), w("TTL e"),
	w("EXPIRE e 50 GT"), w("EXPIRE e 500 GT"), w("TTL e"), w("EXPIRE e 1000 LT"), w("EXPIRE e 10 LT"), w("TTL e"),
	w("EXPIRE e 10 NX XX"), w("EXPIRE e 10 GT LT"), w("EXPIRE e 10 NX GT"), w("EXPIRE e 10 FOO"), w("EXPIRE e x"),
	w("EXPIRE e"), w("EXPIRE nothere 10"), w("EXPIRE e 9223372036854775807"), w("EXPIRE e -9223372036854775807"),
	w("PEXPIRE e 9223372036854775807"),
	w("PERSIST e"), w("PERSIST e"), w("TTL e"), w("EXPIRE e 10 XX"), w("EXPIRE e 10 GT"), w("EXPIRE e 10 LT"), w("TTL e"),
	w("PERSIST e"), w("EXPIRE e 10 NX"), w("TTL e"), w("PEXPIRE e 100000"), w("TTL e"), w("EXPIREAT e 1"), w("EXISTS e"),
	w("SET e v"), w("EXPIRE e -1"), w("EXISTS e"), w("SET e v"), w("PEXPIREAT e 0"), w("EXISTS e"),
	w("SET e v"), w("EXPIREAT e 4102444800"), w("EXPIRETIME e"), w("PEXPIRETIME e"), w("EXPIRETIME nothere"),
	w("PERSIST e"), w("EXPIRETIME e"), w("PTTL e"), w("PTTL nothere"), w("TTL nothere"), w("TTL"),
	w("INCR i"), w("INCR i"), w("INCRBY i 10"), w("DECR i"), w("DECRBY i 5"), w("INCRBY i x"), w("INCRBY i 1.5"),
	w("INCRBY i 01"), w("INCRBY i +1"), w("INCRBY i -0"), w("INCRBY i 9223372036854775807"),
	w("SET i -9223372036854775808"), w("DECR i"), w("DECRBY i -9223372036854775808"), w("DECRBY x -9223372036854775808"),
	w("SET i abc"), w("INCR i"), w("SET i ' 1'"), w("INCR i"), w("SET i 1x"), w("INCR i"),
	w("SET i 00"), w("INCR i"), w("INCR"), w("INCRBY i"),
	w("SET f 10.5"), w("INCRBYFLOAT f 0.1"), w("INCRBYFLOAT f -5"), w("INCRBYFLOAT f abc"), w("INCRBYFLOAT nf 3"),
	w("INCRBYFLOAT nf 1e3"), w("INCRBYFLOAT nf 1.5e-1"), w("SET f abc"), w("INCRBYFLOAT f 1"),
	w("INCRBYFLOAT nf inf"), w("INCRBYFLOAT nf ' 1'"), w("GET nf"), w("SET f 3"), w("INCRBYFLOAT f 2"), w("INCRBYFLOAT f 0.5"),
	w("SET ap hello"), w("EXPIRE ap 100"), w("APPEND ap _world"), w("GET ap"), w("TTL ap"), w("APPEND nap x"), w("STRLEN ap"),
	w("STRLEN nothere"), w("APPEND ap"),
	w("SET r Hello_World"), w("GETRANGE r 0 4"), w("GETRANGE r -5 -1"), w("GETRANGE r 5 2"), w("GETRANGE r -1 -5"),
	w("GETRANGE r 0 100"), w("GETRANGE r -100 2"), w("GETRANGE r x 1"), w("GETRANGE nothere 0 1"), w("SUBSTR r 1 3"),
	w("GETRANGE r 0 -100"), w("GETRANGE r 100 200"),
	w("SETRANGE r 6 Redis"), w("GET r"), w("SETRANGE r -1 x"), w("SETRANGE r x x"), w("SETRANGE sr 5 abc"), w("GET sr"),
	w("SETRANGE sr2 0 ''"), w("EXISTS sr2"), w("SETRANGE r 0 ''"), w("SETRANGE r 1 ''"),
	w("SETRANGE r 536870912 x"),
	w("TYPE r"), w("TYPE nothere"), w("TYPE"),
	w("SELECT 0"), w("SELECT x"), w("SELECT 99999999999"), w("SELECT"),
	w("DBSIZE x"), w("FLUSHDB x"), w("FLUSHDB ASYNC"), w("FLUSHALL SYNC"), w("FLUSHALL x y"), w("DBSIZE"),
	w("MSET k1 1 k2 2 k3 3 ka a kb b x[y] 1 x*y 2 x\\y 3"),
	w("KEYS k?"), w("KEYS k[12]"), w("KEYS k[^1]"), w("KEYS k[a-b]"), w("KEYS k[b-a]"), w("KEYS x\\[y\\]"), w("KEYS x\\*y"),
	w("KEYS x[*]y"), w("KEYS x\\\\y"), w("KEYS nomatch*"), w("KEYS"), w("KEYS k[1"), w("KEYS *[^a-z0-9]*"),
	w("SCAN x"), w("SCAN 0 COUNT 0"), w("SCAN 0 COUNT x"), w("SCAN 0 MATCH"), w("SCAN 0 FOO bar"),
	w("AUTH x"), w("AUTH a b c"), w("AUTH default x"), w("AUTH other x"),
	w("HELLO 4"), w("HELLO x"), w("HELLO 2 FOO"), w("HELLO 2 AUTH default"),
	w("CLIENT"), w("CLIENT FOO"), w("CLIENT SETNAME a b"), w("CLIENT SETNAME x y z"), w("CLIENT GETNAME"),
	w("CLIENT SETNAME myname"), w("CLIENT GETNAME"), w("CLIENT SETNAME ''"), w("CLIENT GETNAME"), w("CLIENT ID x"),
	w("CLIENT NO-EVICT maybe"), w("CLIENT NO-EVICT on"),
	w("CONFIG"), w("CONFIG FOO"), w("CONFIG GET"), w("CONFIG GET save"), w("CONFIG GET appendonly"),
	w("CONFIG GET maxmemory-policy"), /* differs: policy */
	w("COMMAND FOO"), w("COMMAND COUNT x"),
	w("MULTI"), w("SET t 1"), w("INCR t"), w("GET t"), w("MULTI"), w("WATCH t"), w("EXEC"),
	w("EXEC"), w("DISCARD"), w("MULTI"), w("DISCARD"), w("MULTI"), w("SET t"), w("INCR t"), w("EXEC"), w("GET t"),
	w("MULTI"), w("FOO"), w("EXEC"), w("MULTI"), w("SET t x"), w("INCR t"), w("GET t"), w("EXEC"),
	w("MULTI"), w("EXEC"),
	w("WATCH"), w("SET wk 1"), w("WATCH wk"), w("SET wk 2"), w("MULTI"), w("GET wk"), w("EXEC"),
	w("WATCH wk"), w("MULTI"), w("GET wk"), w("EXEC"), w("WATCH wk"), w("UNWATCH"), w("SET wk 3"), w("MULTI"), w("GET wk"), w("EXEC"),
	w("WATCH wk"), w("SET wk 3"), w("MULTI"), w("GET wk"), w("EXEC"),
	w("WATCH nowk"), w("MULTI"), w("SET nowk 1"), w("EXEC"), w("WATCH nowk"), w("DEL nowk"), w("MULTI"), w("EXEC"),
	w("WATCH wk"), w("MULTI"), w("PING"), w("DISCARD"), w("SET wk 9"), w("MULTI"), w("EXEC"),
	w("UNWATCH x"), w("MULTI"), w("UNWATCH"), w("EXEC"),
	w("MULTI"), w("SELECT 0"), w("PING"), w("EXEC"),
	w("MULTI"), w("SET mk 1"), w("KEYS mk"), w("SCAN 0 MATCH mk COUNT 1000"), w("INCR mk"), w("EXEC"),
	w("SET wk2 1"), w("WATCH wk2"), w("MULTI"), w("KEYS wk2"), w("GET wk2"), w("EXEC"),
	w("WATCH wk2"), w("SET wk2 2"), w("MULTI"), w("KEYS wk2"), w("EXEC"), w("FLUSHALL"),
	w("RESET x"), w("TIME x"), w("DBSIZE"),
}

// diffScriptKeys covers the key, bit and LCS commands and the hash type: arity and
// option errors, wrong types in both directions, and the replies' shapes in RESP2 and
// RESP3. Hashes stay small (Redis's listpack), whose field order is insertion order.
var diffScriptKeys = [][]string{
	w("FLUSHALL"),
	// RENAME, RENAMENX, COPY: values of both types move with their expiry.
	w("RENAME"), w("RENAME a"), w("RENAME nokey x"), w("RENAMENX nokey x"), w("SET ra 1"), w("RENAME ra ra"), w("RENAMENX ra ra"),
	w("EXPIRE ra 100"), w("RENAME ra rb"), w("EXISTS ra"), w("GET rb"), w("TTL rb"), w("SET rc 2"), w("RENAMENX rb rc"),
	w("RENAMENX rb rd"), w("GET rd"), w("RENAME rd rc"), w("GET rc"), w("TTL rc"), w("RENAME rc x y"),
	w("COPY"), w("COPY a"), w("COPY rc rc"), w("COPY nokey x"), w("COPY rc cc"), w("GET cc"), w("TTL cc"), w("COPY rc cc"),
	w("SET rc 3"), w("COPY rc cc REPLACE"), w("GET cc"), w("COPY rc cc DB 0 REPLACE"), w("COPY rc cc DB"), w("COPY rc cc DB x"),
	w("COPY rc cc FOO"), w("COPY rc cc replace replace"),
	w("HSET rh f v"), w("RENAME rh rh2"), w("HGETALL rh2"), w("COPY rh2 rh3"), w("HGETALL rh3"), w("TYPE rh3"), w("RENAME rh3 cc"), w("TYPE cc"),
	w("RENAMENX rh2 cc"), w("COPY rh2 cc REPLACE"), w("HGET cc f"),
	// Bits.
	w("SETBIT"), w("SETBIT b 7"), w("SETBIT b 7 1"), w("SETBIT b 7 1"), w("GET b"), w("SETBIT b 7 0"), w("SETBIT b 100 1"), w("STRLEN b"),
	w("SETBIT b -1 1"), w("SETBIT b x 1"), w("SETBIT b 1 2"), w("SETBIT b 1 -1"), w("SETBIT b 1 x"), w("SETBIT b 4294967296 1"),
	w("GETBIT b 100"), w("GETBIT b 101"), w("GETBIT b 100000"), w("GETBIT nokey 3"), w("GETBIT b -1"), w("GETBIT b x"), w("GETBIT b"),
	w("EXPIRE b 100"), w("SETBIT b 3 1"), w("TTL b"),
	w("SET bc foobar"), w("BITCOUNT bc"), w("BITCOUNT bc 0 0"), w("BITCOUNT bc 1 1"), w("BITCOUNT bc 1 -2"), w("BITCOUNT bc -2 -1"),
	w("BITCOUNT bc 5 30 BIT"), w("BITCOUNT bc 0 -1 bit"), w("BITCOUNT bc 0 -1 BYTE"), w("BITCOUNT bc -1 -2"), w("BITCOUNT bc 3 1"),
	w("BITCOUNT bc 1"), w("BITCOUNT bc 1 2 FOO"), w("BITCOUNT bc x 1"), w("BITCOUNT bc 1 2 BIT x"), w("BITCOUNT nokey"),
	w("BITCOUNT nokey 1"), w("BITCOUNT"), w("BITCOUNT bc 100 200"), w("BITCOUNT bc -100 -50"), w("BITCOUNT bc 7 9 BIT"),
	w("SET bp \xff\xf0\x00"), w("SET bp2 ''"), w("SETBIT bz 23 0"), w("SETBIT bo 0 1"), w("SETBIT bo 1 1"),
	w("BITPOS bz 0"), w("BITPOS bz 1"), w("BITPOS bo 0"), w("BITPOS bo 1"), w("BITPOS bo 1 1"), w("BITPOS bo 0 1"),
	w("BITPOS bc 1"), w("BITPOS bc 0"), w("BITPOS bc 1 2"), w("BITPOS bc 0 1 3"), w("BITPOS bc 1 -1"), w("BITPOS bc 1 7 15 BIT"),
	w("BITPOS bc 0 7 15 BIT"), w("BITPOS bc 1 10 9"), w("BITPOS bc 0 -3 -1 BYTE"), w("BITPOS bc 1 100"), w("BITPOS nokey 0"),
	w("BITPOS nokey 1"), w("BITPOS bc 2"), w("BITPOS bc x"), w("BITPOS bc 1 x"), w("BITPOS bc 1 0 x"), w("BITPOS bc 1 0 1 FOO"),
	w("BITPOS bc 1 0 1 BIT x"), w("BITPOS bc"), w("BITPOS bp2 0"), w("BITPOS bp2 1"), w("BITPOS bc 0 0 -1"), w("BITPOS bc 1 -7 -1 BIT"),
	w("SET ones \xff\xff"), w("BITPOS ones 0"), w("BITPOS ones 0 0 -1"), w("BITPOS ones 0 1"), w("BITPOS ones 0 3 10 BIT"),
	// LCS.
	w("MSET la ohmytext lb mynewtext"), w("LCS la lb"), w("LCS la lb LEN"), w("LCS la lb IDX"), w("LCS la lb IDX MINMATCHLEN 4"),
	w("LCS la lb IDX MINMATCHLEN 4 WITHMATCHLEN"), w("LCS la lb IDX WITHMATCHLEN"), w("LCS la lb LEN IDX"), w("LCS la lb FOO"),
	w("LCS la lb MINMATCHLEN"), w("LCS la lb MINMATCHLEN x"), w("LCS la nokey"), w("LCS nokey nokey2 IDX"), w("LCS la"),
	w("LCS la lb IDX MINMATCHLEN -5"), w("MSET lc abcabc ld abc"), w("LCS lc ld IDX WITHMATCHLEN"), w("LCS ld lc IDX"),
	// Hashes.
	w("HSET"), w("HSET h"), w("HSET h f"), w("HSET h f v g"), w("HSET h f v"), w("HSET h f v2 g w"), w("HGET h f"), w("HGET h nof"),
	w("HGET nokey f"), w("HGET h"), w("HMSET h a 1 b 2"), w("HMSET h a"), w("HSETNX h a 9"), w("HSETNX h c 3"), w("HSETNX h c"),
	w("HGETALL h"), w("HKEYS h"), w("HVALS h"), w("HLEN h"), w("HMGET h a nof c"), w("HMGET nokey a b"), w("HMGET h"),
	w("HEXISTS h a"), w("HEXISTS h nof"), w("HEXISTS nokey a"), w("HSTRLEN h f"), w("HSTRLEN h nof"), w("HSTRLEN nokey f"),
	w("HGETALL nokey"), w("HKEYS nokey"), w("HVALS nokey"), w("HLEN nokey"),
	w("HDEL h a nof"), w("HDEL h a"), w("HDEL nokey a"), w("HDEL h"), w("HGETALL h"),
	w("HSET h '' empty"), w("HGET h ''"), w("HDEL h ''"),
	w("HINCRBY h n 5"), w("HINCRBY h n -7"), w("HINCRBY h n x"), w("HINCRBY h f 1"), w("HINCRBY h n 9223372036854775807"),
	w("HSET h big 9223372036854775807"), w("HINCRBY h big 1"), w("HINCRBY h n 1.5"), w("HINCRBY h"), w("HINCRBY nokey2 n 3"),
	w("HINCRBYFLOAT h fl 10.5"), w("HINCRBYFLOAT h fl 0.1"), w("HINCRBYFLOAT h fl -5e2"), w("HINCRBYFLOAT h fl x"),
	w("HINCRBYFLOAT h f 1"), w("HINCRBYFLOAT h fl inf"), w("HINCRBYFLOAT h n 1"), w("HGET h n"), w("HINCRBYFLOAT h fl"),
	w("HSET hr only one"), w("HRANDFIELD hr"), w("HRANDFIELD hr 1"), w("HRANDFIELD hr 5"), w("HRANDFIELD hr 5 WITHVALUES"),
	w("HRANDFIELD hr -3"), w("HRANDFIELD hr -2 WITHVALUES"), w("HRANDFIELD hr 0"), w("HRANDFIELD nokey"), w("HRANDFIELD nokey 3"),
	w("HRANDFIELD hr x"), w("HRANDFIELD hr 1 FOO"), w("HRANDFIELD hr 1 WITHVALUES x"), w("HRANDFIELD h 100 WITHVALUES"),
	w("HRANDFIELD hr -9223372036854775808"), w("HRANDFIELD hr 9223372036854775807 WITHVALUES"),
	w("HSCAN h 0"), w("HSCAN h 0 MATCH f*"), w("HSCAN h 0 COUNT 1"), w("HSCAN h 0 COUNT 0"), w("HSCAN h 0 COUNT x"),
	w("HSCAN h x"), w("HSCAN h 0 FOO"), w("HSCAN h 0 MATCH"), w("HSCAN nokey 0"), w("HSCAN nokey 0 COUNT 0"), w("HSCAN h"),
	w("TYPE h"), w("OBJECT ENCODING h"), w("OBJECT ENCODING nokey"), w("OBJECT ENCODING la"), w("SET int 12345"),
	w("OBJECT ENCODING int"), w("SET long 01234567890123456789012345678901234567890123456789"), w("OBJECT ENCODING long"),
	w("OBJECT ENCODING"), w("OBJECT FOO"),
	// Wrong types, both ways.
	w("GET h"), w("SET sgt x GET"), w("HSET sgt f v"), w("SET sgt x GET"), w("GETSET sgt x"), w("GETDEL sgt"), w("GETEX sgt"),
	w("INCR sgt"), w("INCRBYFLOAT sgt 1"), w("APPEND sgt x"), w("STRLEN sgt"), w("GETRANGE sgt 0 1"), w("SETRANGE sgt 0 x"),
	w("SETBIT sgt 1 1"), w("GETBIT sgt 1"), w("BITCOUNT sgt"), w("BITPOS sgt 1"), w("LCS sgt la"), w("LCS la sgt"),
	w("MGET sgt la"), w("SETNX sgt x"), w("MSETNX sgt x"), w("EXISTS sgt"), w("TYPE sgt"), w("EXPIRE sgt 100"), w("TTL sgt"),
	w("PERSIST sgt"), w("HGET la f"), w("HSET la f v"), w("HMGET la f"), w("HGETALL la"), w("HDEL la f"), w("HLEN la"),
	w("HEXISTS la f"), w("HKEYS la"), w("HVALS la"), w("HSTRLEN la f"), w("HINCRBY la f 1"), w("HINCRBYFLOAT la f 1"),
	w("HSETNX la f v"), w("HRANDFIELD la"), w("HRANDFIELD la 2"), w("HSCAN la 0"), w("HMSET la f v"),
	w("SET sgt plain"), w("TYPE sgt"), w("GET sgt"), w("DEL sgt h hr"), w("EXISTS h"),
	w("HSET hx f v"), w("EXPIRE hx 100"), w("TTL hx"), w("HSET hx g w"), w("TTL hx"), w("PERSIST hx"), w("TTL hx"),
	w("HDEL hx f g"), w("EXISTS hx"),
	// Expiry times that fit in 64 bits but not in the store's 48 are kept as its latest.
	w("SET pe v"), w("PEXPIREAT pe 9223372036854770000"), w("EXISTS pe"), w("EXPIREAT pe 9223372036854775"), w("EXISTS pe"),
	w("PEXPIREAT pe -9223372036854770000"), w("EXISTS pe"), w("SET pe v PXAT 9223372036854770000"), w("EXISTS pe"),
	w("SET pe v PX 9000000000000000000"), w("EXISTS pe"), w("GETEX pe EXAT 9223372036854775"), w("EXISTS pe"),
	w("FLUSHALL"),
}

func TestDifferentialRedis(t *testing.T) {
	raddr := startRedis(t)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := startEnv(t, resp.Config{EventLoops: m.loops}, store.Config{})
			rc := dial(t, "tcp", raddr)
			cc := dial(t, "tcp", e.tcp)
			skip := map[string]bool{"CONFIG GET maxmemory-policy": true}
			// HELLO's reply differs only in the client id and the version.
			norm := regexp.MustCompile(`(\$2\r\nid\r\n:)\d+|(\$7\r\nversion\r\n)\$\d+\r\n[0-9.]+`)
			for _, proto := range []string{"2", "3"} {
				got := norm.ReplaceAllString(cc.do("HELLO", proto), "$1$2")
				want := norm.ReplaceAllString(rc.do("HELLO", proto), "$1$2")
				if got != want {
					t.Errorf("HELLO %s:\n got %q\nwant %q", proto, got, want)
				}
				for _, cmd := range slices.Concat(diffScript, diffScriptKeys) {
					want := rc.do(cmd...)
					got := cc.do(cmd...)
					if skip[strings.Join(cmd, " ")] {
						continue
					}
					if strings.EqualFold(cmd[0], "keys") {
						got, want = sortedReply(got), sortedReply(want)
					}
					if got != want {
						t.Errorf("RESP%s %q:\n got %q\nwant %q", proto, strings.Join(cmd, " "), got, want)
					}
				}
			}
		})
	}
}

// sortedReply puts the elements of a flat array reply in order, for replies whose order
// is the hash table's.
func sortedReply(s string) string {
	lines := strings.SplitAfter(s, "\r\n")
	if len(lines) < 2 || s[0] != '*' {
		return s
	}
	var elems []string
	for i := 1; i+1 < len(lines); i += 2 {
		elems = append(elems, lines[i]+lines[i+1])
	}
	slices.Sort(elems)
	return lines[0] + strings.Join(elems, "")
}
