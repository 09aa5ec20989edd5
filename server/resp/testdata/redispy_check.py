"""redis-py against a running cachee RESP server.

Usage: python redispy_check.py (tcp HOST PORT | unix PATH) PROTOCOL [PASSWORD]
Exits non-zero, with a traceback, on the first unexpected reply.
"""

import sys
import threading

import redis


def connect(args, protocol, password, **kw):
    if args[0] == "tcp":
        return redis.Redis(host=args[1], port=int(args[2]), protocol=protocol, password=password, **kw)
    return redis.Redis(unix_socket_path=args[1], protocol=protocol, password=password, **kw)


def eq(what, got, want):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


def main():
    args = sys.argv[1:]
    if args[0] == "tcp":
        addr, rest = args[:3], args[3:]
    else:
        addr, rest = args[:2], args[2:]
    protocol = int(rest[0])
    password = rest[1] if len(rest) > 1 else None
    r = connect(addr, protocol, password)

    eq("ping", r.ping(), True)
    r.flushdb()
    eq("set", r.set("k", "v"), True)
    eq("get", r.get("k"), b"v")
    eq("get missing", r.get("missing"), None)
    eq("set nx", r.set("k", "x", nx=True), None)
    eq("set ex", r.set("e", "v", ex=100), True)
    eq("ttl", r.ttl("e"), 100)
    eq("set get", r.set("k", "w", get=True), b"v")
    eq("mset", r.mset({"a": "1", "b": "2"}), True)
    eq("mget", r.mget("a", "b", "c"), [b"1", b"2", None])
    eq("incr", r.incr("a"), 2)
    eq("incrby", r.incrby("a", 10), 12)
    eq("incrbyfloat", r.incrbyfloat("a", 0.5), 12.5)
    eq("append", r.append("s", "abc"), 3)
    eq("getrange", r.getrange("s", 1, -1), b"bc")
    eq("setrange", r.setrange("s", 5, "z"), 6)
    eq("strlen", r.strlen("s"), 6)
    eq("exists", r.exists("a", "b", "nope"), 2)
    eq("expire", r.expire("a", 50), True)
    eq("persist", r.persist("a"), True)
    eq("pttl", r.pttl("a"), -1)
    eq("type", r.type("a"), b"string")
    eq("keys", sorted(r.keys("*")), [b"a", b"b", b"e", b"k", b"s"])
    eq("scan_iter", sorted(r.scan_iter(match="[ab]", count=2)), [b"a", b"b"])
    eq("dbsize", r.dbsize(), 5)
    eq("getdel", r.getdel("b"), b"2")
    eq("delete", r.delete("a", "nope"), 1)
    eq("echo", r.echo("hi"), b"hi")
    eq("client setname", r.client_setname("py"), True)
    eq("client getname", r.client_getname() in ("py", b"py"), True)
    info = r.info()
    eq("info version", "redis_version" in info, True)
    eq("info keyspace", r.info("keyspace").get("db0", {}).get("keys"), 3)
    eq("config get", r.config_get("maxmemory-policy")["maxmemory-policy"], "allkeys-lfu")
    eq("time", len(r.time()), 2)
    try:
        r.execute_command("NOSUCHCOMMAND", "x")
        raise AssertionError("unknown command did not fail")
    except redis.ResponseError as e:
        eq("unknown command", str(e).startswith("unknown command 'NOSUCHCOMMAND'"), True)
    try:
        r.set("k", "v", ex=0)
        raise AssertionError("ex=0 did not fail")
    except redis.ResponseError as e:
        eq("invalid expire", str(e), "invalid expire time in 'set' command")

    # redis-py's default pipeline is a transaction: MULTI ... EXEC.
    with r.pipeline() as p:
        p.set("t", 1).incr("t").incr("t").get("t")
        eq("transaction", p.execute(), [True, 2, 3, b"3"])

    # A pipeline without a transaction, 10k commands.
    with r.pipeline(transaction=False) as p:
        for i in range(10000):
            p.set(f"p:{i}", i)
            p.get(f"p:{i}")
        out = p.execute()
    eq("pipeline length", len(out), 20000)
    for i in range(10000):
        if out[2 * i] is not True or out[2 * i + 1] != str(i).encode():
            raise AssertionError(f"pipeline reply {i}: {out[2 * i]!r} {out[2 * i + 1]!r}")

    # WATCH with concurrent writers: no lost update.
    r.set("ctr", 0)

    def incr_many(n):
        c = connect(addr, protocol, password)
        for _ in range(n):
            with c.pipeline() as p:
                while True:
                    try:
                        p.watch("ctr")
                        v = int(p.get("ctr"))
                        p.multi()
                        p.set("ctr", v + 1)
                        p.execute()
                        break
                    except redis.WatchError:
                        continue
        c.close()

    threads = [threading.Thread(target=incr_many, args=(50,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    eq("watch counter", int(r.get("ctr")), 200)

    # decode_responses, as most applications use it.
    d = connect(addr, protocol, password, decode_responses=True)
    eq("decoded get", d.get("t"), "3")
    eq("decoded hello-less info", isinstance(d.info("server"), dict), True)
    print("redis-py", redis.__version__, "protocol", protocol, "ok")


if __name__ == "__main__":
    main()
