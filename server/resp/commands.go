package resp

import (
	"slices"
	"strings"
)

// cmdFlags describe a command to the dispatcher and to COMMAND INFO.
type cmdFlags uint16

const (
	flagWrite    cmdFlags = 1 << iota
	flagReadonly          // reads keys
	flagDenyOOM           // may grow memory
	flagFast              // O(1) or O(log n)
	flagNoAuth            // allowed before AUTH
	flagNoQueue           // runs at once inside MULTI (EXEC, DISCARD, MULTI, WATCH, QUIT, RESET)
	flagNoTx              // walks the store: runs outside EXEC's store transaction
	flagAdmin
	flagLoading
)

// command is one entry of the command table.
type command struct {
	name    string // lower case; "parent|sub" for a subcommand, as Redis names them
	arity   int    // > 0: exact argument count (name included); < 0: at least -arity
	flags   cmdFlags
	first   int // first key argument, 0 if none
	last    int // last key argument, -1 for "to the end"
	step    int
	group   string
	since   string
	summary string
	fn      func(c *client, args [][]byte)
	subs    map[string]*command
}

func (cmd *command) sub(name []byte) *command {
	var buf [32]byte
	if len(name) > len(buf) {
		return nil
	}
	return cmd.subs[lowerInto(buf[:0], name)]
}

// lowerInto appends name in lower case to buf and returns it as a string that is only
// used as a map key (the compiler does not allocate for that).
func lowerInto(buf []byte, name []byte) string {
	for _, c := range name {
		if c >= 'A' && c <= 'Z' {
			c += 32
		}
		buf = append(buf, c)
	}
	return string(buf)
}

var commands map[string]*command

// lookup finds a command by name, ignoring case, without allocating.
func lookup(name []byte) *command {
	var buf [32]byte
	if len(name) > len(buf) {
		return nil
	}
	n := copy(buf[:], name)
	for i := range n {
		if c := buf[i]; c >= 'A' && c <= 'Z' {
			buf[i] = c + 32
		}
	}
	return commands[string(buf[:n])]
}

// sortedCommands is the table in name order, for COMMAND and COMMAND COUNT.
var sortedCommands []*command

func init() {
	const (
		w    = flagWrite
		r    = flagReadonly
		oom  = flagDenyOOM
		fast = flagFast
	)
	type kspec struct{ first, last, step int }
	one := kspec{1, 1, 1}
	two := kspec{1, 2, 1}
	none := kspec{}
	all := kspec{1, -1, 1}
	pairs := kspec{1, -1, 2}
	def := func(name string, arity int, flags cmdFlags, ks kspec, group, since, summary string, fn func(*client, [][]byte)) *command {
		return &command{name: name, arity: arity, flags: flags, first: ks.first, last: ks.last, step: ks.step,
			group: group, since: since, summary: summary, fn: fn}
	}
	list := []*command{
		def("get", 2, r|fast, one, "string", "1.0.0", "Returns the string value of a key.", cmdGet),
		def("set", -3, w|oom, one, "string", "1.0.0", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", cmdSet),
		def("setnx", 3, w|oom|fast, one, "string", "1.0.0", "Set the string value of a key only when the key doesn't exist.", cmdSetNX),
		def("setex", 4, w|oom, one, "string", "2.0.0", "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", cmdSetEX),
		def("psetex", 4, w|oom, one, "string", "2.6.0", "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", cmdPSetEX),
		def("getset", 3, w|oom|fast, one, "string", "1.0.0", "Returns the previous string value of a key after setting it to a new value.", cmdGetSet),
		def("getdel", 2, w|fast, one, "string", "6.2.0", "Returns the string value of a key after deleting the key.", cmdGetDel),
		def("getex", -2, w|fast, one, "string", "6.2.0", "Returns the string value of a key after setting its expiration time.", cmdGetEX),
		def("mget", -2, r|fast, all, "string", "1.0.0", "Atomically returns the string values of one or more keys.", cmdMGet),
		def("mset", -3, w|oom, pairs, "string", "1.0.1", "Atomically creates or modifies the string values of one or more keys.", cmdMSet),
		def("msetnx", -3, w|oom, pairs, "string", "1.0.1", "Atomically modifies the string values of one or more keys only when all keys don't exist.", cmdMSetNX),
		def("incr", 2, w|oom|fast, one, "string", "1.0.0", "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", cmdIncr),
		def("decr", 2, w|oom|fast, one, "string", "1.0.0", "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", cmdDecr),
		def("incrby", 3, w|oom|fast, one, "string", "1.0.0", "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", cmdIncrBy),
		def("decrby", 3, w|oom|fast, one, "string", "1.0.0", "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", cmdDecrBy),
		def("incrbyfloat", 3, w|oom|fast, one, "string", "2.6.0", "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", cmdIncrByFloat),
		def("append", 3, w|oom|fast, one, "string", "2.0.0", "Appends a string to the value of a key. Creates the key if it doesn't exist.", cmdAppend),
		def("strlen", 2, r|fast, one, "string", "2.2.0", "Returns the length of a string value.", cmdStrlen),
		def("getrange", 4, r, one, "string", "2.4.0", "Returns a substring of the string stored at a key.", cmdGetRange),
		def("substr", 4, r, one, "string", "1.0.0", "Returns a substring from a string value.", cmdGetRange),
		def("setrange", 4, w|oom, one, "string", "2.2.0", "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", cmdSetRange),
		def("setbit", 4, w|oom, one, "bitmap", "2.2.0", "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.", cmdSetBit),
		def("getbit", 3, r|fast, one, "bitmap", "2.2.0", "Returns a bit value by offset.", cmdGetBit),
		def("bitcount", -2, r, one, "bitmap", "2.6.0", "Counts the number of set bits (population counting) in a string.", cmdBitCount),
		def("bitpos", -3, r, one, "bitmap", "2.8.7", "Finds the first set (1) or clear (0) bit in a string.", cmdBitPos),
		def("lcs", -3, r, two, "string", "7.0.0", "Finds the longest common substring.", cmdLCS),
		def("hset", -4, w|oom|fast, one, "hash", "2.0.0", "Creates or modifies the value of a field in a hash.", cmdHSet),
		def("hmset", -4, w|oom|fast, one, "hash", "2.0.0", "Sets the values of multiple fields.", cmdHSet),
		def("hsetnx", 4, w|oom|fast, one, "hash", "2.0.0", "Sets the value of a field in a hash only when the field doesn't exist.", cmdHSetNX),
		def("hget", 3, r|fast, one, "hash", "2.0.0", "Returns the value of a field in a hash.", cmdHGet),
		def("hmget", -3, r|fast, one, "hash", "2.0.0", "Returns the values of all fields in a hash.", cmdHMGet),
		def("hgetall", 2, r, one, "hash", "2.0.0", "Returns all fields and values in a hash.", cmdHGetAll),
		def("hdel", -3, w|fast, one, "hash", "2.0.0", "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.", cmdHDel),
		def("hexists", 3, r|fast, one, "hash", "2.0.0", "Determines whether a field exists in a hash.", cmdHExists),
		def("hlen", 2, r|fast, one, "hash", "2.0.0", "Returns the number of fields in a hash.", cmdHLen),
		def("hkeys", 2, r, one, "hash", "2.0.0", "Returns all fields in a hash.", cmdHKeys),
		def("hvals", 2, r, one, "hash", "2.0.0", "Returns all values in a hash.", cmdHVals),
		def("hincrby", 4, w|oom|fast, one, "hash", "2.0.0", "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.", cmdHIncrBy),
		def("hincrbyfloat", 4, w|oom|fast, one, "hash", "2.6.0", "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.", cmdHIncrByFloat),
		def("hstrlen", 3, r|fast, one, "hash", "3.2.0", "Returns the length of the value of a field.", cmdHStrlen),
		def("hrandfield", -2, r, one, "hash", "6.2.0", "Returns one or more random fields from a hash.", cmdHRandField),
		def("hscan", -3, r, one, "hash", "2.8.0", "Iterates over fields and values of a hash.", cmdHScan),
		def("hexpire", -6, w|fast, one, "hash", "7.4.0", "Set expiry for hash field using relative time to expire (seconds)", cmdHExpire),
		def("hpexpire", -6, w|fast, one, "hash", "7.4.0", "Set expiry for hash field using relative time to expire (milliseconds)", cmdHPExpire),
		def("hexpireat", -6, w|fast, one, "hash", "7.4.0", "Set expiry for hash field using an absolute Unix timestamp (seconds)", cmdHExpireAt),
		def("hpexpireat", -6, w|fast, one, "hash", "7.4.0", "Set expiry for hash field using an absolute Unix timestamp (milliseconds)", cmdHPExpireAt),
		def("httl", -5, r|fast, one, "hash", "7.4.0", "Returns the TTL in seconds of a hash field.", cmdHTTL),
		def("hpttl", -5, r|fast, one, "hash", "7.4.0", "Returns the TTL in milliseconds of a hash field.", cmdHPTTL),
		def("hexpiretime", -5, r|fast, one, "hash", "7.4.0", "Returns the expiration time of a hash field as a Unix timestamp, in seconds.", cmdHExpireTime),
		def("hpexpiretime", -5, r|fast, one, "hash", "7.4.0", "Returns the expiration time of a hash field as a Unix timestamp, in msec.", cmdHPExpireTime),
		def("hpersist", -5, w|fast, one, "hash", "7.4.0", "Removes the expiration time for each specified field", cmdHPersist),
		def("rename", 3, w, two, "generic", "1.0.0", "Renames a key and overwrites the destination.", cmdRename),
		def("renamenx", 3, w|fast, two, "generic", "1.0.0", "Renames a key only when the target key name doesn't exist.", cmdRenameNX),
		def("copy", -3, w|oom, two, "generic", "6.2.0", "Copies the value of a key to a new key.", cmdCopy),
		def("object", -2, 0, none, "generic", "2.2.3", "A container for object introspection commands.", nil),
		def("del", -2, w, all, "generic", "1.0.0", "Deletes one or more keys.", cmdDel),
		def("unlink", -2, w|fast, all, "generic", "4.0.0", "Asynchronously deletes one or more keys.", cmdDel),
		def("exists", -2, r|fast, all, "generic", "1.0.0", "Determines whether one or more keys exist.", cmdExists),
		def("expire", -3, w|fast, one, "generic", "1.0.0", "Sets the expiration time of a key in seconds.", cmdExpire),
		def("pexpire", -3, w|fast, one, "generic", "2.6.0", "Sets the expiration time of a key in milliseconds.", cmdPExpire),
		def("expireat", -3, w|fast, one, "generic", "1.2.0", "Sets the expiration time of a key to a Unix timestamp.", cmdExpireAt),
		def("pexpireat", -3, w|fast, one, "generic", "2.6.0", "Sets the expiration time of a key to a Unix milliseconds timestamp.", cmdPExpireAt),
		def("expiretime", 2, r|fast, one, "generic", "7.0.0", "Returns the expiration time of a key as a Unix timestamp.", cmdExpireTime),
		def("pexpiretime", 2, r|fast, one, "generic", "7.0.0", "Returns the expiration time of a key as a Unix milliseconds timestamp.", cmdPExpireTime),
		def("ttl", 2, r|fast, one, "generic", "1.0.0", "Returns the expiration time in seconds of a key.", cmdTTL),
		def("pttl", 2, r|fast, one, "generic", "2.6.0", "Returns the expiration time in milliseconds of a key.", cmdPTTL),
		def("persist", 2, w|fast, one, "generic", "2.2.0", "Removes the expiration time of a key.", cmdPersist),
		def("type", 2, r|fast, one, "generic", "1.0.0", "Determines the type of value stored at a key.", cmdType),
		def("keys", 2, r|flagNoTx, none, "generic", "1.0.0", "Returns all key names that match a pattern.", cmdKeys),
		def("scan", -2, r|flagNoTx, none, "generic", "2.8.0", "Iterates over the key names in the database.", cmdScan),
		def("dbsize", 1, r|fast, none, "server", "1.0.0", "Returns the number of keys in the database.", cmdDBSize),
		def("flushdb", -1, w, none, "server", "1.0.0", "Removes all keys from the current database.", cmdFlush),
		def("flushall", -1, w, none, "server", "1.0.0", "Removes all keys from all databases.", cmdFlush),
		def("ping", -1, fast, none, "connection", "1.0.0", "Returns the server's liveliness response.", cmdPing),
		def("echo", 2, fast, none, "connection", "1.0.0", "Returns the given string.", cmdEcho),
		def("quit", -1, flagNoAuth|flagNoQueue|fast, none, "connection", "1.0.0", "Closes the connection.", cmdQuit),
		def("reset", 1, flagNoAuth|flagNoQueue|fast, none, "connection", "6.2.0", "Resets the connection.", cmdReset),
		def("select", 2, flagLoading|fast, none, "connection", "1.0.0", "Changes the selected database.", cmdSelect),
		def("hello", -1, flagNoAuth|fast, none, "connection", "6.0.0", "Handshakes with the Redis server.", cmdHello),
		def("auth", -2, flagNoAuth|fast, none, "connection", "1.0.0", "Authenticates the connection.", cmdAuth),
		def("info", -1, flagLoading, none, "server", "1.0.0", "Returns information and statistics about the server.", cmdInfo),
		def("time", 1, flagLoading|fast, none, "server", "2.6.0", "Returns the server time.", cmdTime),
		def("multi", 1, flagNoQueue|fast, none, "transactions", "1.2.0", "Starts a transaction.", cmdMulti),
		def("exec", 1, flagNoQueue, none, "transactions", "1.2.0", "Executes all commands in a transaction.", cmdExec),
		def("discard", 1, flagNoQueue|fast, none, "transactions", "2.0.0", "Discards a transaction.", cmdDiscard),
		def("watch", -2, flagNoQueue|fast, all, "transactions", "2.2.0", "Monitors changes to keys to determine the execution of a transaction.", cmdWatch),
		def("unwatch", 1, fast, none, "transactions", "2.2.0", "Forgets about watched keys of a transaction.", cmdUnwatch),
		def("client", -2, 0, none, "connection", "2.4.0", "A container for client connection commands.", nil),
		def("config", -2, 0, none, "server", "2.0.0", "A container for server configuration commands.", nil),
		def("command", -1, flagLoading, none, "server", "2.8.13", "Returns detailed information about all commands.", cmdCommand),
	}
	subs := map[string][]*command{
		"client": {
			def("client|setname", 3, fast, none, "connection", "2.6.9", "Sets the connection name.", cmdClientSetName),
			def("client|getname", 2, fast, none, "connection", "2.6.9", "Returns the name of the connection.", cmdClientGetName),
			def("client|id", 2, fast, none, "connection", "5.0.0", "Returns the unique client ID of the connection.", cmdClientID),
			def("client|setinfo", 4, fast, none, "connection", "7.2.0", "Sets information specific to the client or connection.", cmdClientSetInfo),
			def("client|info", 2, 0, none, "connection", "6.2.0", "Returns information about the connection.", cmdClientInfo),
			def("client|list", -2, flagAdmin, none, "connection", "2.4.0", "Lists open connections.", cmdClientList),
			def("client|no-evict", 3, flagAdmin, none, "connection", "7.0.0", "Sets the client eviction mode of the connection.", cmdClientOnOff),
			def("client|no-touch", 3, fast, none, "connection", "7.2.0", "Controls whether commands sent by the client affect the LRU/LFU of accessed keys.", cmdClientOnOff),
			def("client|help", 2, flagLoading, none, "connection", "5.0.0", "Returns helpful text about the different subcommands.", cmdClientHelp),
		},
		"object": {
			def("object|encoding", 3, r, kspec{2, 2, 1}, "generic", "2.2.3", "Returns the internal encoding of a Redis object.", cmdObjectEncoding),
		},
		"config": {
			def("config|get", -3, flagAdmin, none, "server", "2.0.0", "Returns the effective values of configuration parameters.", cmdConfigGet),
			def("config|set", -4, flagAdmin, none, "server", "2.0.0", "Sets configuration parameters in-flight.", cmdConfigSet),
			def("config|resetstat", 2, flagAdmin, none, "server", "2.0.0", "Resets the server's statistics.", cmdConfigResetStat),
			def("config|help", 2, flagLoading, none, "server", "5.0.0", "Returns helpful text about the different subcommands.", cmdConfigHelp),
		},
		"command": {
			def("command|count", 2, flagLoading, none, "server", "2.8.13", "Returns a count of commands.", cmdCommandCount),
			def("command|docs", -2, flagLoading, none, "server", "7.0.0", "Returns documentary information about one, multiple or all commands.", cmdCommandDocs),
			def("command|info", -2, flagLoading, none, "server", "2.8.13", "Returns information about one, multiple or all commands.", cmdCommandInfo),
			def("command|list", -2, flagLoading, none, "server", "7.0.0", "Returns a list of command names.", cmdCommandList),
			def("command|help", 2, flagLoading, none, "server", "5.0.0", "Returns helpful text about the different subcommands.", cmdCommandHelp),
		},
	}
	commands = make(map[string]*command, len(list))
	for _, c := range list {
		commands[c.name] = c
		if ss, ok := subs[c.name]; ok {
			c.subs = make(map[string]*command, len(ss))
			for _, s := range ss {
				c.subs[strings.TrimPrefix(s.name, c.name+"|")] = s
			}
		}
		sortedCommands = append(sortedCommands, c)
	}
	sortCommands(sortedCommands)
	setCmd = commands["set"]
}

func sortCommands(cs []*command) {
	slices.SortFunc(cs, func(a, b *command) int { return strings.Compare(a.name, b.name) })
}
