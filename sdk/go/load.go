package cachee

import (
	"bytes"
	"context"
	"time"
)

// GetOrLoad returns key's value from the cache or, on a miss, from load, which it then
// stores with ttl: the read-through pattern of an in-process L1 in front of a slower
// source. Concurrent GetOrLoads of one key share a single call of load (singleflight);
// it runs with the context of the call that started it.
//
// The sidecar is an optimisation here, never a dependency: if it fails (it is down,
// restarting, full, or rejects the key), GetOrLoad still returns load's value, and the
// failure is only counted in Counters.SidecarErrors. The only errors it returns are
// load's own.
func (c *Client) GetOrLoad(ctx context.Context, key string, ttl time.Duration, load func(ctx context.Context) ([]byte, error)) ([]byte, error) {
	v, found, err := c.Get(ctx, key)
	if err == nil && found {
		return v, nil
	}
	if err != nil {
		c.sidecarFailed("get", key, err)
	}
	r, err, shared := c.sf.Do(key, func() (any, error) {
		v, err := load(ctx)
		c.ctr.loads.Add(1)
		if err != nil {
			return nil, err
		}
		if _, err := c.Set(ctx, key, v, WithTTL(ttl)); err != nil {
			c.sidecarFailed("set", key, err)
		}
		return v, nil
	})
	if err != nil {
		return nil, err
	}
	v = r.([]byte)
	if shared {
		// Each caller may modify its value.
		v = bytes.Clone(v)
	}
	return v, nil
}

func (c *Client) sidecarFailed(op, key string, err error) {
	c.ctr.sidecarErrors.Add(1)
	c.log.Debug("cachee: GetOrLoad went on without the sidecar", "op", op, "key", key, "err", err)
}
