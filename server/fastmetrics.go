package server

import (
	"context"
	"strings"
	"sync/atomic"

	grpcprom "github.com/grpc-ecosystem/go-grpc-prometheus"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// fastMetrics counts the fast path's calls in the grpc_server_* series that
// go-grpc-prometheus keeps for grpc-go's: /metrics shows one set of counters, whichever
// path a call took. go-grpc-prometheus's interceptor looks its counters up by label
// values on every call (a hash of three or four strings each, four times); the fast
// path counts in arrays by method and code instead, and adds its counts to
// go-grpc-prometheus's series when they are collected.
type fastMetrics struct {
	prom     *grpcprom.ServerMetrics
	service  string
	methods  map[string]int // method name -> index
	started  []atomic.Uint64
	received []atomic.Uint64
	sent     []atomic.Uint64
	handled  [][numCodes]atomic.Uint64
	family   map[*prometheus.Desc]string // go-grpc-prometheus's descriptors, by family name
}

// numCodes is how many gRPC status codes there are (OK through Unauthenticated).
const numCodes = int(codes.Unauthenticated) + 1

func newFastMetrics(prom *grpcprom.ServerMetrics, service string, methods []string) *fastMetrics {
	n := len(methods)
	m := &fastMetrics{
		prom:     prom,
		service:  service,
		methods:  map[string]int{},
		started:  make([]atomic.Uint64, n),
		received: make([]atomic.Uint64, n),
		sent:     make([]atomic.Uint64, n),
		handled:  make([][numCodes]atomic.Uint64, n),
		family:   map[*prometheus.Desc]string{},
	}
	for i, name := range methods {
		m.methods[name] = i
	}
	descs := make(chan *prometheus.Desc, 16)
	go func() {
		prom.Describe(descs)
		close(descs)
	}()
	for d := range descs {
		// Desc{fqName: "grpc_server_started_total", ...}: the only way to its name.
		s := d.String()
		if i := strings.Index(s, `fqName: "`); i >= 0 {
			s = s[i+len(`fqName: "`):]
			m.family[d] = s[:strings.IndexByte(s, '"')]
		}
	}
	return m
}

// interceptor counts calls of method i as go-grpc-prometheus's unary interceptor
// counts them: started and received before the handler, handled by code after it,
// and sent when it succeeded.
func (m *fastMetrics) interceptor(i int) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		m.started[i].Add(1)
		m.received[i].Add(1)
		resp, err := h(ctx, req)
		st, _ := status.FromError(err)
		if c := int(st.Code()); c < numCodes {
			m.handled[i][c].Add(1)
		}
		if err == nil {
			m.sent[i].Add(1)
		}
		return resp, err
	}
}

func (m *fastMetrics) Describe(ch chan<- *prometheus.Desc) { m.prom.Describe(ch) }

// Collect collects go-grpc-prometheus's series with the fast path's counts added.
func (m *fastMetrics) Collect(ch chan<- prometheus.Metric) {
	inner := make(chan prometheus.Metric, 64)
	go func() {
		m.prom.Collect(inner)
		close(inner)
	}()
	for pm := range inner {
		ch <- m.added(pm)
	}
}

func (m *fastMetrics) added(pm prometheus.Metric) prometheus.Metric {
	family, ok := m.family[pm.Desc()]
	if !ok {
		return pm
	}
	var d dto.Metric
	if pm.Write(&d) != nil || d.Counter == nil {
		return pm
	}
	var typ, svc, method, code string
	for _, l := range d.GetLabel() {
		switch l.GetName() {
		case "grpc_type":
			typ = l.GetValue()
		case "grpc_service":
			svc = l.GetValue()
		case "grpc_method":
			method = l.GetValue()
		case "grpc_code":
			code = l.GetValue()
		}
	}
	i, ok := m.methods[method]
	if typ != "unary" || svc != m.service || !ok {
		return pm
	}
	var n uint64
	switch family {
	case "grpc_server_started_total":
		n = m.started[i].Load()
	case "grpc_server_msg_received_total":
		n = m.received[i].Load()
	case "grpc_server_msg_sent_total":
		n = m.sent[i].Load()
	case "grpc_server_handled_total":
		for c := range numCodes {
			if codes.Code(c).String() == code {
				n = m.handled[i][c].Load()
			}
		}
	}
	if n == 0 {
		return pm
	}
	return addedMetric{pm, float64(n)}
}

// addedMetric is a counter with more added to it.
type addedMetric struct {
	prometheus.Metric
	add float64
}

func (a addedMetric) Write(d *dto.Metric) error {
	if err := a.Metric.Write(d); err != nil {
		return err
	}
	if d.Counter != nil {
		d.Counter.Value = proto.Float64(d.Counter.GetValue() + a.add)
	}
	return nil
}
