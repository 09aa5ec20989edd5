package dev.cachee.springsession;

import java.time.Duration;

import org.springframework.data.redis.connection.RedisStandaloneConfiguration;
import org.springframework.data.redis.connection.lettuce.LettuceConnectionFactory;
import org.springframework.data.redis.core.RedisTemplate;
import org.springframework.data.redis.serializer.RedisSerializer;
import org.springframework.session.Session;
import org.springframework.session.SessionRepository;
import org.springframework.session.data.redis.RedisSessionRepository;

/**
 * Drives Spring Session's RedisSessionRepository against a RESP server at
 * 127.0.0.1:PORT: create, save, find, update one attribute, change the session id,
 * expire, delete. Prints "id OLD NEW" for the caller to inspect the stored hash, then
 * "ok"; exits 1 with a message on the first wrong answer.
 */
public final class Main {
    public static void main(String[] args) throws Exception {
        LettuceConnectionFactory cf = new LettuceConnectionFactory(
                new RedisStandaloneConfiguration("127.0.0.1", Integer.parseInt(args[0])));
        cf.afterPropertiesSet();
        cf.start();
        RedisTemplate<String, Object> tpl = new RedisTemplate<>();
        tpl.setConnectionFactory(cf);
        tpl.setKeySerializer(RedisSerializer.string());
        tpl.setHashKeySerializer(RedisSerializer.string());
        tpl.afterPropertiesSet();
        RedisSessionRepository repo = new RedisSessionRepository(tpl);
        repo.setDefaultMaxInactiveInterval(Duration.ofMinutes(30));
        try {
            run(repo);
        } finally {
            cf.destroy();
        }
    }

    private static <S extends Session> void run(SessionRepository<S> repo) throws Exception {
        {
            S s = repo.createSession();
            s.setAttribute("user", "ada");
            s.setAttribute("cart", 3);
            repo.save(s);
            String first = s.getId();
            S found = repo.findById(first);
            check(found != null && "ada".equals(found.getAttribute("user")) && Integer.valueOf(3).equals(found.getAttribute("cart")),
                    "findById after save");
            found.setAttribute("cart", 4);
            found.removeAttribute("user");
            repo.save(found);
            found = repo.findById(first);
            check(Integer.valueOf(4).equals(found.getAttribute("cart")) && found.getAttribute("user") == null,
                    "one attribute changed, one removed");
            String renamed = found.changeSessionId();
            repo.save(found);
            check(repo.findById(first) == null, "the old id after changeSessionId");
            found = repo.findById(renamed);
            check(found != null && Integer.valueOf(4).equals(found.getAttribute("cart")), "the new id after changeSessionId");
            System.out.println("id " + first + " " + renamed);

            S shortLived = repo.createSession();
            shortLived.setMaxInactiveInterval(Duration.ofSeconds(1));
            shortLived.setAttribute("x", "y");
            repo.save(shortLived);
            check(repo.findById(shortLived.getId()) != null, "a session with a 1 s timeout, at once");
            Thread.sleep(1500);
            check(repo.findById(shortLived.getId()) == null, "a session with a 1 s timeout, 1.5 s later");

            S gone = repo.createSession();
            gone.setAttribute("a", "b");
            repo.save(gone);
            repo.deleteById(gone.getId());
            check(repo.findById(gone.getId()) == null, "deleteById");
            System.out.println("ok");
        }
    }

    private static void check(boolean ok, String what) {
        if (!ok) {
            System.out.println("FAILED: " + what);
            System.exit(1);
        }
    }
}
