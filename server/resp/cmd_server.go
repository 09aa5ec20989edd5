package resp

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/cachee/cachee/store"
)

func cmdTime(c *client, args [][]byte) {
	now := time.Now()
	c.w.array(2)
	c.w.bulkInt(now.Unix())
	c.w.bulkInt(int64(now.Nanosecond() / 1000))
}

// policyName is the Redis maxmemory-policy closest to the store's eviction policy.
func policyName(p string) string {
	switch p {
	case store.EvictionNone:
		return "noeviction"
	case store.EvictionLRU:
		return "allkeys-lru"
	}
	return "allkeys-lfu"
}

func humanBytes(n int64) string {
	f := float64(n)
	switch {
	case n < 1024:
		return strconv.FormatInt(n, 10) + "B"
	case n < 1<<20:
		return fmt.Sprintf("%.2fK", f/1024)
	case n < 1<<30:
		return fmt.Sprintf("%.2fM", f/(1<<20))
	}
	return fmt.Sprintf("%.2fG", f/(1<<30))
}

// infoSections lists INFO's sections in Redis's order, and whether "INFO" and
// "INFO default" include each.
var infoSections = []string{"server", "clients", "memory", "persistence", "stats", "replication", "cpu", "keyspace"}

func (s *Server) infoSection(name string) string {
	var b strings.Builder
	kv := func(k string, v any) { fmt.Fprintf(&b, "%s:%v\r\n", k, v) }
	st := s.st.Stats()
	sc := s.st.Config()
	now := time.Now()
	switch name {
	case "server":
		b.WriteString("# Server\r\n")
		kv("redis_version", redisVersion)
		kv("redis_git_sha1", "00000000")
		kv("redis_git_dirty", 0)
		kv("redis_build_id", "0")
		kv("redis_mode", "standalone")
		kv("os", runtime.GOOS+" "+runtime.GOARCH)
		kv("arch_bits", strconv.IntSize)
		kv("multiplexing_api", "epoll")
		kv("process_id", os.Getpid())
		kv("process_supervised", "no")
		kv("run_id", s.runID)
		kv("tcp_port", s.cfg.Port)
		kv("server_time_usec", now.UnixMicro())
		up := now.Sub(s.start)
		kv("uptime_in_seconds", int64(up/time.Second))
		kv("uptime_in_days", int64(up/(24*time.Hour)))
		kv("hz", 10)
		kv("configured_hz", 10)
		kv("lru_clock", now.Unix()&(1<<24-1))
		kv("executable", executable())
		kv("config_file", "")
		kv("io_threads_active", 0)
		kv("cachee_go_version", runtime.Version())
	case "clients":
		s.mu.Lock()
		n := len(s.clients)
		s.mu.Unlock()
		b.WriteString("# Clients\r\n")
		kv("connected_clients", n)
		kv("cluster_connections", 0)
		kv("maxclients", s.cfg.MaxClients)
		kv("blocked_clients", 0)
		kv("tracking_clients", 0)
	case "memory":
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.WriteString("# Memory\r\n")
		kv("used_memory", st.BytesUsed)
		kv("used_memory_human", humanBytes(st.BytesUsed))
		kv("used_memory_rss", ms.Sys)
		kv("used_memory_rss_human", humanBytes(int64(ms.Sys)))
		kv("maxmemory", st.BytesLimit)
		kv("maxmemory_human", humanBytes(st.BytesLimit))
		kv("maxmemory_policy", policyName(sc.Eviction))
		kv("mem_allocator", "go")
		kv("cachee_eviction", sc.Eviction)
		kv("cachee_go_heap_alloc", ms.HeapAlloc)
	case "persistence":
		b.WriteString("# Persistence\r\n")
		kv("loading", 0)
		kv("async_loading", 0)
		kv("rdb_changes_since_last_save", 0)
		kv("rdb_bgsave_in_progress", 0)
		kv("rdb_last_save_time", s.start.Unix())
		kv("rdb_last_bgsave_status", "ok")
		kv("aof_enabled", 0)
		kv("aof_rewrite_in_progress", 0)
	case "stats":
		b.WriteString("# Stats\r\n")
		kv("total_connections_received", s.connsTotal.Load())
		kv("total_commands_processed", s.cmdsTotal.Load())
		kv("total_net_input_bytes", s.netIn.Load())
		kv("total_net_output_bytes", s.netOut.Load())
		kv("rejected_connections", s.rejected.Load())
		kv("evicted_clients", s.evicted.Load())
		kv("client_query_buffer_limit_disconnections", s.queryLimitDrops.Load())
		kv("client_output_buffer_limit_disconnections", s.outputLimitDrops.Load())
		kv("cachee_idle_timeout_disconnections", s.idleDrops.Load())
		kv("expired_keys", st.Expirations)
		kv("evicted_keys", st.Evictions)
		kv("keyspace_hits", st.Hits)
		kv("keyspace_misses", st.Misses)
		kv("pubsub_channels", 0)
		kv("pubsub_patterns", 0)
	case "replication":
		b.WriteString("# Replication\r\n")
		kv("role", "master")
		kv("connected_slaves", 0)
		kv("master_replid", s.runID)
		kv("master_repl_offset", 0)
	case "cpu":
		b.WriteString("# CPU\r\n")
		user, sys := cpuTimes()
		kv("used_cpu_sys", fmt.Sprintf("%.6f", sys))
		kv("used_cpu_user", fmt.Sprintf("%.6f", user))
	case "keyspace":
		b.WriteString("# Keyspace\r\n")
		if st.Entries > 0 {
			// The store does not count keys with an expiry apart: expires is not known.
			fmt.Fprintf(&b, "db0:keys=%d,expires=%d,avg_ttl=0\r\n", st.Entries, st.Expiring)
		}
	}
	return b.String()
}

func executable() string {
	p, err := os.Executable()
	if err != nil {
		return ""
	}
	return p
}

func cmdInfo(c *client, args [][]byte) {
	want := map[string]bool{}
	if len(args) == 1 {
		want["default"] = true
	}
	for _, a := range args[1:] {
		want[strings.ToLower(string(a))] = true
	}
	var parts []string
	for _, sec := range infoSections {
		if want[sec] || want["default"] || want["all"] || want["everything"] {
			parts = append(parts, c.srv.infoSection(sec))
		}
	}
	c.w.verbatim(strings.Join(parts, "\r\n"))
}

// configParams are the parameters CONFIG GET answers, in the order it lists them.
func (s *Server) configParams() [][2]string {
	sc := s.st.Config()
	return [][2]string{
		{"maxmemory", strconv.FormatInt(sc.MaxMemory, 10)},
		{"maxmemory-policy", policyName(sc.Eviction)},
		{"save", ""},
		{"appendonly", "no"},
		{"databases", "1"},
		{"maxclients", strconv.Itoa(s.cfg.MaxClients)},
		{"timeout", strconv.FormatInt(int64(s.cfg.IdleTimeout/time.Second), 10)},
		{"port", strconv.Itoa(s.cfg.Port)},
		{"proto-max-bulk-len", strconv.Itoa(s.maxBulk)},
		{"cluster-enabled", "no"},
	}
}

func cmdConfigGet(c *client, args [][]byte) {
	params := c.srv.configParams()
	matched := make([]bool, len(params))
	n := 0
	for _, a := range args[2:] {
		pat := []byte(strings.ToLower(string(a)))
		for i, p := range params {
			if !matched[i] && globMatch(pat, []byte(p[0])) {
				matched[i] = true
				n++
			}
		}
	}
	c.w.mapLen(n)
	for i, p := range params {
		if matched[i] {
			c.w.bulkString(p[0])
			c.w.bulkString(p[1])
		}
	}
}

func cmdConfigSet(c *client, args [][]byte) {
	c.w.err("ERR CONFIG SET is not supported by cachee: its settings are flags, set at start")
}

func cmdConfigResetStat(c *client, args [][]byte) {
	s := c.srv
	s.connsTotal.Store(0)
	s.cmdsTotal.Store(0)
	s.rejected.Store(0)
	s.evicted.Store(0)
	s.queryLimitDrops.Store(0)
	s.outputLimitDrops.Store(0)
	s.idleDrops.Store(0)
	s.netIn.Store(0)
	s.netOut.Store(0)
	c.w.ok()
}

func cmdConfigHelp(c *client, args [][]byte) {
	c.help([]string{
		"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
		"GET <pattern>",
		"    Return parameters matching the glob-like <pattern> and their values.",
		"SET <directive> <value>",
		"    Not supported by cachee: settings are flags, set at start.",
		"RESETSTAT",
		"    Reset statistics reported by the INFO command.",
		"HELP",
		"    Print this help.",
	})
}

func cmdCommand(c *client, args [][]byte) {
	c.w.array(len(sortedCommands))
	for _, cmd := range sortedCommands {
		c.commandInfo(cmd)
	}
}

func cmdCommandCount(c *client, args [][]byte) { c.w.int(int64(len(sortedCommands))) }

func cmdCommandList(c *client, args [][]byte) {
	if len(args) > 2 {
		c.w.err(errSyntax)
		return
	}
	c.w.array(len(sortedCommands))
	for _, cmd := range sortedCommands {
		c.w.bulkString(cmd.name)
	}
}

func cmdCommandInfo(c *client, args [][]byte) {
	if len(args) == 2 {
		cmdCommand(c, args)
		return
	}
	c.w.array(len(args) - 2)
	for _, name := range args[2:] {
		if cmd := lookupFull(name); cmd != nil {
			c.commandInfo(cmd)
		} else {
			c.w.nullArray()
		}
	}
}

// lookupFull finds a command or a "parent|sub" subcommand.
func lookupFull(name []byte) *command {
	s := strings.ToLower(string(name))
	if p, sub, ok := strings.Cut(s, "|"); ok {
		if cmd := commands[p]; cmd != nil && cmd.subs != nil {
			return cmd.subs[sub]
		}
		return nil
	}
	return commands[s]
}

func (cmd *command) flagNames() []string {
	var f []string
	add := func(bit cmdFlags, name string) {
		if cmd.flags&bit != 0 {
			f = append(f, name)
		}
	}
	add(flagWrite, "write")
	add(flagReadonly, "readonly")
	add(flagDenyOOM, "denyoom")
	add(flagAdmin, "admin")
	add(flagNoAuth, "no_auth")
	add(flagLoading, "loading")
	add(flagFast, "fast")
	return f
}

func (cmd *command) categories() []string {
	cats := []string{"@" + map[string]string{"generic": "keyspace", "transactions": "transaction"}[cmd.group]}
	if cats[0] == "@" {
		cats[0] = "@" + cmd.group
	}
	if cmd.flags&flagWrite != 0 {
		cats = append(cats, "@write")
	}
	if cmd.flags&flagReadonly != 0 {
		cats = append(cats, "@read")
	}
	if cmd.flags&flagAdmin != 0 {
		cats = append(cats, "@admin", "@dangerous")
	}
	if cmd.flags&flagFast != 0 {
		cats = append(cats, "@fast")
	} else {
		cats = append(cats, "@slow")
	}
	return cats
}

// commandInfo writes Redis 7's ten-element COMMAND INFO entry. Key specs and tips are
// left empty; the legacy first/last/step key positions are given.
func (c *client) commandInfo(cmd *command) {
	c.w.array(10)
	c.w.bulkString(cmd.name)
	c.w.int(int64(cmd.arity))
	fl := cmd.flagNames()
	c.w.setLen(len(fl))
	for _, f := range fl {
		c.w.simple(f)
	}
	c.w.int(int64(cmd.first))
	c.w.int(int64(cmd.last))
	c.w.int(int64(cmd.step))
	cats := cmd.categories()
	c.w.setLen(len(cats))
	for _, cat := range cats {
		c.w.simple(cat)
	}
	c.w.array(0) // tips
	c.w.array(0) // key specs
	subs := sortedSubs(cmd)
	c.w.array(len(subs))
	for _, s := range subs {
		c.commandInfo(s)
	}
}

func sortedSubs(cmd *command) []*command {
	var subs []*command
	for _, s := range cmd.subs {
		subs = append(subs, s)
	}
	sortCommands(subs)
	return subs
}

func cmdCommandDocs(c *client, args [][]byte) {
	var cmds []*command
	if len(args) == 2 {
		cmds = sortedCommands
	} else {
		for _, name := range args[2:] {
			if cmd := lookupFull(name); cmd != nil {
				cmds = append(cmds, cmd)
			}
		}
	}
	c.w.mapLen(len(cmds))
	for _, cmd := range cmds {
		c.w.bulkString(cmd.name)
		c.commandDoc(cmd)
	}
}

func (c *client) commandDoc(cmd *command) {
	subs := sortedSubs(cmd)
	n := 3
	if len(subs) > 0 {
		n++
	}
	c.w.mapLen(n)
	c.w.bulkString("summary")
	c.w.bulkString(cmd.summary)
	c.w.bulkString("since")
	c.w.bulkString(cmd.since)
	c.w.bulkString("group")
	c.w.bulkString(cmd.group)
	if len(subs) > 0 {
		c.w.bulkString("subcommands")
		c.w.mapLen(len(subs))
		for _, s := range subs {
			c.w.bulkString(s.name)
			c.commandDoc(s)
		}
	}
}

func cmdCommandHelp(c *client, args [][]byte) {
	c.help([]string{
		"COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
		"(no subcommand)",
		"    Return details about all commands.",
		"COUNT",
		"    Return the total number of commands in this server.",
		"LIST",
		"    Return a list of all commands in this server.",
		"INFO [<command-name> ...]",
		"    Return details about multiple commands.",
		"DOCS [<command-name> ...]",
		"    Return documentation details about multiple commands.",
		"HELP",
		"    Print this help.",
	})
}
