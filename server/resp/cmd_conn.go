package resp

import (
	"cmp"
	"crypto/subtle"
	"slices"
	"strconv"
	"strings"
	"time"
)

// redisVersion is the Redis version cachee answers as (HELLO, INFO): the one whose
// replies it matches.
const redisVersion = "7.0.0"

func cmdPing(c *client, args [][]byte) {
	switch len(args) {
	case 1:
		c.w.raw("+PONG\r\n")
	case 2:
		c.w.bulk(args[1])
	default:
		c.w.err(errArgs("ping"))
	}
}

func cmdEcho(c *client, args [][]byte) { c.w.bulk(args[1]) }

func cmdQuit(c *client, args [][]byte) {
	c.w.ok()
	c.closing = true
}

func cmdReset(c *client, args [][]byte) {
	if c.multi {
		c.endMulti()
	}
	c.srv.watch.unwatchAll(c)
	c.setProto(2)
	c.mu.Lock()
	c.name = ""
	c.mu.Unlock()
	c.authed = c.srv.cfg.RequirePass == ""
	c.w.simple("RESET")
}

func cmdSelect(c *client, args [][]byte) {
	n, ok := parseInt(args[1])
	if !ok {
		c.w.err(errNotInt)
		return
	}
	if n < math32Min || n > math32Max {
		c.w.err("ERR value is out of range, value must between -2147483648 and 2147483647")
		return
	}
	if n != 0 {
		c.w.err("ERR DB index is out of range")
		return
	}
	c.w.ok()
}

const (
	math32Min = -1 << 31
	math32Max = 1<<31 - 1
)

// checkPassword authenticates user/pass against requirepass, in constant time.
func (c *client) checkPassword(user, pass []byte) bool {
	if string(user) != "default" {
		return false
	}
	want := c.srv.cfg.RequirePass
	if want == "" {
		return true // the default user has no password: anything goes, as in Redis
	}
	return subtle.ConstantTimeCompare(pass, []byte(want)) == 1
}

func cmdAuth(c *client, args [][]byte) {
	if len(args) > 3 {
		c.w.err(errSyntax)
		return
	}
	user, pass := []byte("default"), args[len(args)-1]
	if len(args) == 2 {
		if c.srv.cfg.RequirePass == "" {
			c.w.err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
			return
		}
	} else {
		user = args[1]
	}
	if !c.checkPassword(user, pass) {
		c.w.err(errWrongPass)
		return
	}
	c.authed = true
	c.w.ok()
}

func cmdHello(c *client, args [][]byte) {
	ver := int64(0)
	next := 1
	if len(args) >= 2 {
		v, ok := parseInt(args[1])
		if !ok {
			c.w.err("ERR Protocol version is not an integer or out of range")
			return
		}
		if v < 2 || v > 3 {
			c.w.err("NOPROTO unsupported protocol version")
			return
		}
		ver = v
		next = 2
	}
	var user, pass, name []byte
	setName := false
	for j := next; j < len(args); j++ {
		more := len(args) - 1 - j
		switch {
		case eqFold(args[j], "auth") && more >= 2:
			user, pass = args[j+1], args[j+2]
			j += 2
		case eqFold(args[j], "setname") && more >= 1:
			name, setName = args[j+1], true
			if !validName(name) {
				c.w.err("ERR Client names cannot contain spaces, newlines or special characters.")
				return
			}
			j++
		default:
			c.w.err("ERR Syntax error in HELLO option '" + trunc(args[j], len(args[j])) + "'")
			return
		}
	}
	if user != nil {
		if !c.checkPassword(user, pass) {
			c.w.err(errWrongPass)
			return
		}
		c.authed = true
	}
	if !c.authed {
		c.w.err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	if setName {
		c.mu.Lock()
		c.name = string(name)
		c.mu.Unlock()
	}
	if ver != 0 {
		c.setProto(int(ver))
	}
	c.w.mapLen(7)
	c.w.bulkString("server")
	c.w.bulkString("redis")
	c.w.bulkString("version")
	c.w.bulkString(redisVersion)
	c.w.bulkString("proto")
	c.w.int(int64(c.w.proto))
	c.w.bulkString("id")
	c.w.int(c.id)
	c.w.bulkString("mode")
	c.w.bulkString("standalone")
	c.w.bulkString("role")
	c.w.bulkString("master")
	c.w.bulkString("modules")
	c.w.array(0)
}

// validName is Redis's rule for client names and library attributes: printable ASCII
// without spaces.
func validName(b []byte) bool {
	for _, ch := range b {
		if ch < '!' || ch > '~' {
			return false
		}
	}
	return true
}

func cmdClientSetName(c *client, args [][]byte) {
	if !validName(args[2]) {
		c.w.err("ERR Client names cannot contain spaces, newlines or special characters.")
		return
	}
	c.mu.Lock()
	c.name = string(args[2])
	c.mu.Unlock()
	c.w.ok()
}

func cmdClientGetName(c *client, args [][]byte) {
	c.mu.Lock()
	name := c.name
	c.mu.Unlock()
	if name == "" {
		c.w.null()
		return
	}
	c.w.bulkString(name)
}

func cmdClientID(c *client, args [][]byte) { c.w.int(c.id) }

func cmdClientSetInfo(c *client, args [][]byte) {
	attr := args[2]
	var dst *string
	switch {
	case eqFold(attr, "lib-name"):
		dst = &c.libName
	case eqFold(attr, "lib-ver"):
		dst = &c.libVer
	default:
		c.w.err("ERR Unrecognized option '" + trunc(attr, len(attr)) + "'")
		return
	}
	if !validName(args[3]) {
		c.w.err("ERR " + trunc(attr, len(attr)) + " cannot contain spaces, newlines or special characters.")
		return
	}
	c.mu.Lock()
	*dst = string(args[3])
	c.mu.Unlock()
	c.w.ok()
}

func cmdClientOnOff(c *client, args [][]byte) {
	if !eqFold(args[2], "on") && !eqFold(args[2], "off") {
		c.w.err(errSyntax)
		return
	}
	c.w.ok()
}

// info renders c as one CLIENT LIST line (without the newline).
func (c *client) info(now time.Time) string {
	c.mu.Lock()
	name, lib, ver, proto, multiN, fd := c.name, c.libName, c.libVer, c.proto, c.multiN, c.fd
	c.mu.Unlock()
	flags := "N"
	if multiN >= 0 {
		flags = "x"
	}
	cmd := "NULL"
	if lc := c.lastCmd.Load(); lc != nil {
		cmd = lc.name
	}
	idle := now.Sub(time.Unix(0, c.lastActive.Load()))
	var b strings.Builder
	b.WriteString("id=" + strconv.FormatInt(c.id, 10))
	b.WriteString(" addr=" + c.addr)
	b.WriteString(" laddr=" + c.laddr)
	b.WriteString(" fd=" + strconv.Itoa(fd))
	b.WriteString(" name=" + name)
	b.WriteString(" age=" + strconv.FormatInt(int64(now.Sub(c.created)/time.Second), 10))
	b.WriteString(" idle=" + strconv.FormatInt(max(int64(idle/time.Second), 0), 10))
	b.WriteString(" flags=" + flags)
	b.WriteString(" db=0 sub=0 psub=0 ssub=0")
	b.WriteString(" multi=" + strconv.Itoa(multiN))
	b.WriteString(" qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0")
	b.WriteString(" events=r cmd=" + cmd)
	b.WriteString(" user=default redir=-1 resp=" + strconv.Itoa(proto))
	b.WriteString(" lib-name=" + lib + " lib-ver=" + ver)
	return b.String()
}

func cmdClientInfo(c *client, args [][]byte) {
	c.w.verbatim(c.info(time.Now()) + "\n")
}

func cmdClientList(c *client, args [][]byte) {
	var ids map[int64]bool
	for i := 2; i < len(args); {
		switch {
		case eqFold(args[i], "type") && i+1 < len(args):
			t := args[i+1]
			switch {
			case eqFold(t, "normal"):
			case eqFold(t, "master"), eqFold(t, "replica"), eqFold(t, "slave"), eqFold(t, "pubsub"):
				ids = map[int64]bool{}
			default:
				c.w.err("ERR Unknown client type '" + trunc(t, len(t)) + "'")
				return
			}
			i += 2
		case eqFold(args[i], "id") && i+1 < len(args):
			if ids == nil {
				ids = map[int64]bool{}
			}
			for i++; i < len(args); i++ {
				id, ok := parseInt(args[i])
				if !ok || id <= 0 {
					c.w.err("ERR Invalid client ID")
					return
				}
				ids[id] = true
			}
		default:
			c.w.err(errSyntax)
			return
		}
	}
	now := time.Now()
	c.srv.mu.Lock()
	cls := make([]*client, 0, len(c.srv.clients))
	for _, cl := range c.srv.clients {
		if ids == nil || ids[cl.id] {
			cls = append(cls, cl)
		}
	}
	c.srv.mu.Unlock()
	sortClients(cls)
	var b strings.Builder
	for _, cl := range cls {
		b.WriteString(cl.info(now))
		b.WriteByte('\n')
	}
	c.w.verbatim(b.String())
}

func sortClients(cs []*client) {
	slices.SortFunc(cs, func(a, b *client) int { return cmp.Compare(a.id, b.id) })
}

func (c *client) help(lines []string) {
	c.w.array(len(lines))
	for _, l := range lines {
		c.w.simple(l)
	}
}

func cmdClientHelp(c *client, args [][]byte) {
	c.help([]string{
		"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
		"GETNAME",
		"    Return the name of the current connection.",
		"ID",
		"    Return the ID of the current connection.",
		"INFO",
		"    Return information about the current client connection.",
		"LIST [options ...]",
		"    Return information about client connections. Options:",
		"    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
		"      Return clients of specified type.",
		"    * ID <client-id> [<client-id> ...]",
		"      Return clients with the specified IDs.",
		"SETNAME <name>",
		"    Assign the name <name> to the current connection.",
		"SETINFO <LIB-NAME|LIB-VER> <value>",
		"    Set client library name or version.",
		"NO-EVICT (ON|OFF)",
		"    Accepted and ignored: cachee never evicts clients.",
		"NO-TOUCH (ON|OFF)",
		"    Accepted and ignored.",
		"HELP",
		"    Print this help.",
	})
}
