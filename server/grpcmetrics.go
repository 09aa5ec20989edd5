package server

import (
	"context"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// grpcMetrics are the grpc_server_* counters, with the names, labels and help that
// go-grpc-prometheus gives them (dashboards made for it read them): calls started,
// calls handled by code, messages received and sent. Each method's counters are
// resolved once, when it is registered, so that counting a call is a few atomic
// adds: the data-path handlers count their calls themselves (datapath.go), the
// interceptors count the others.
type grpcMetrics struct {
	started, handled, received, sent *prometheus.CounterVec
	methods                          map[string]*methodCounters // by full method name; written before serving only
}

// methodCounters are one method's counters.
type methodCounters struct {
	started, received, sent prometheus.Counter
	handled                 [codes.Unauthenticated + 1]prometheus.Counter // by code
}

func newGRPCMetrics(reg prometheus.Registerer) *grpcMetrics {
	labels := []string{"grpc_type", "grpc_service", "grpc_method"}
	m := &grpcMetrics{
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_started_total", Help: "Total number of RPCs started on the server.",
		}, labels),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_handled_total", Help: "Total number of RPCs completed on the server, regardless of success or failure.",
		}, append(labels, "grpc_code")),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_msg_received_total", Help: "Total number of RPC stream messages received on the server.",
		}, labels),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_msg_sent_total", Help: "Total number of gRPC stream messages sent by the server.",
		}, labels),
		methods: map[string]*methodCounters{},
	}
	reg.MustRegister(m.started, m.handled, m.received, m.sent)
	return m
}

// register resolves the counters of the methods of a service (each at zero, so that
// they show before the first call) and returns them by method name.
func (m *grpcMetrics) register(sd *grpc.ServiceDesc) map[string]*methodCounters {
	byName := map[string]*methodCounters{}
	add := func(name, typ string) {
		c := &methodCounters{
			started:  m.started.WithLabelValues(typ, sd.ServiceName, name),
			received: m.received.WithLabelValues(typ, sd.ServiceName, name),
			sent:     m.sent.WithLabelValues(typ, sd.ServiceName, name),
		}
		for code := range c.handled {
			c.handled[code] = m.handled.WithLabelValues(typ, sd.ServiceName, name, codes.Code(code).String())
		}
		byName[name] = c
		m.methods["/"+sd.ServiceName+"/"+name] = c
	}
	for _, md := range sd.Methods {
		add(md.MethodName, "unary")
	}
	for _, st := range sd.Streams {
		typ := "bidi_stream"
		switch {
		case st.ClientStreams && !st.ServerStreams:
			typ = "client_stream"
		case !st.ClientStreams && st.ServerStreams:
			typ = "server_stream"
		}
		add(st.StreamName, typ)
	}
	return byName
}

// lookup returns a registered method's counters.
func (m *grpcMetrics) lookup(fullMethod string) *methodCounters {
	if c := m.methods[fullMethod]; c != nil {
		return c
	}
	// Not registered through the server's registrar: counted all the same.
	svc, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	c := &methodCounters{
		started:  m.started.WithLabelValues("unary", svc, method),
		received: m.received.WithLabelValues("unary", svc, method),
		sent:     m.sent.WithLabelValues("unary", svc, method),
	}
	for code := range c.handled {
		c.handled[code] = m.handled.WithLabelValues("unary", svc, method, codes.Code(code).String())
	}
	return c
}

// done counts a call that ended with err.
func (c *methodCounters) done(err error) {
	code := status.Code(err)
	if int(code) >= len(c.handled) {
		code = codes.Unknown
	}
	c.handled[code].Inc()
}

func (m *grpcMetrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	c := m.lookup(info.FullMethod)
	c.started.Inc()
	c.received.Inc()
	resp, err := h(ctx, req)
	c.done(err)
	if err == nil {
		c.sent.Inc()
	}
	return resp, err
}

func (m *grpcMetrics) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	c := m.lookup(info.FullMethod)
	c.started.Inc()
	err := h(srv, &countedStream{ServerStream: ss, c: c})
	c.done(err)
	return err
}

// countedStream counts a stream's messages.
type countedStream struct {
	grpc.ServerStream
	c *methodCounters
}

func (s *countedStream) SendMsg(m any) error {
	err := s.ServerStream.SendMsg(m)
	if err == nil {
		s.c.sent.Inc()
	}
	return err
}

func (s *countedStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if err == nil {
		s.c.received.Inc()
	}
	return err
}
