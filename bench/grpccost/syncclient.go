package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// syncH2 is a minimal HTTP/2 client that makes one gRPC call at a time and does all of
// it on the calling goroutine: one write of the request's frames, reads until the
// trailers. It shows what a call costs the server alone, without the client's own
// goroutine hand-offs that grpc-go's client makes (caller -> writer goroutine ->
// socket; socket -> reader goroutine -> caller).
type syncH2 struct {
	nc   net.Conn
	fr   *http2.Framer
	out  bytes.Buffer
	hbuf bytes.Buffer
	enc  *hpack.Encoder
	id   uint32
	got  uint32 // DATA bytes received since the last WINDOW_UPDATE
}

func dialSyncH2(sock string) (*syncH2, error) {
	nc, err := net.Dial("unix", sock)
	if err != nil {
		return nil, err
	}
	c := &syncH2{nc: nc, id: 1}
	c.fr = http2.NewFramer(&c.out, nc)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.enc = hpack.NewEncoder(&c.hbuf)
	c.out.WriteString(http2.ClientPreface)
	c.fr.WriteSettings()
	if _, err := nc.Write(c.out.Bytes()); err != nil {
		nc.Close()
		return nil, err
	}
	c.out.Reset()
	return c, nil
}

func (c *syncH2) Close() error { return c.nc.Close() }

var checkBody = []byte{0, 0, 0, 0, 0} // an empty HealthCheckRequest

// check calls grpc.health.v1.Health/Check and waits for its trailers.
func (c *syncH2) check() error {
	_, err := c.call("/grpc.health.v1.Health/Check", checkBody)
	return err
}

// call makes a unary call of path with body (a gRPC message with its 5-byte prefix)
// and returns the number of DATA bytes of the answer.
func (c *syncH2) call(path string, body []byte) (int, error) {
	c.hbuf.Reset()
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", path},
		{":authority", "localhost"}, {"content-type", "application/grpc"}, {"te", "trailers"}} {
		c.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	id := c.id
	c.id += 2
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(), EndHeaders: true})
	c.fr.WriteData(id, true, body)
	if c.got > 32<<10 {
		c.fr.WriteWindowUpdate(0, c.got)
		c.got = 0
	}
	if _, err := c.nc.Write(c.out.Bytes()); err != nil {
		return 0, err
	}
	c.out.Reset()
	n := 0
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return 0, err
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				c.fr.WriteSettingsAck()
			}
		case *http2.DataFrame:
			c.got += f.Length
			if f.StreamID == id {
				n += len(f.Data())
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == id && f.StreamEnded() {
				if s := f.PseudoValue("status"); s != "" && s != "200" {
					return 0, fmt.Errorf("status %s", s)
				}
				for _, hf := range f.RegularFields() {
					if hf.Name == "grpc-status" && hf.Value != "0" {
						return 0, fmt.Errorf("grpc-status %s", hf.Value)
					}
				}
				return n, nil
			}
		case *http2.RSTStreamFrame:
			return 0, errors.New("stream reset")
		case *http2.GoAwayFrame:
			return 0, errors.New("GOAWAY")
		}
	}
}

// syncH2Load runs n goroutines, each with a connection of its own, making call.
func syncH2Load(sock string, call func(*syncH2) error) func(n int, d time.Duration) (int, error) {
	return func(n int, d time.Duration) (int, error) {
		var stop atomic.Bool
		var total atomic.Int64
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for range n {
			c, err := dialSyncH2(sock)
			if err != nil {
				return 0, err
			}
			defer c.Close()
			wg.Go(func() {
				k := 0
				for !stop.Load() {
					if err := call(c); err != nil {
						errs <- err
						break
					}
					k++
				}
				total.Add(int64(k))
			})
		}
		time.Sleep(d)
		stop.Store(true)
		wg.Wait()
		select {
		case err := <-errs:
			return 0, err
		default:
		}
		return int(total.Load()), nil
	}
}
