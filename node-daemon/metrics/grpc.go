package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// GRPC records a latency histogram of every gRPC call by method and status code.
type GRPC struct {
	latency *prometheus.HistogramVec
}

// NewGRPC returns the gRPC metrics; register them with Register.
func NewGRPC() *GRPC {
	return &GRPC{latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cobalt_node_grpc_request_duration_seconds",
		Help:    "Latency of node daemon gRPC calls by method and status code.",
		Buckets: prometheus.ExponentialBuckets(50e-6, 2, 18), // 50µs .. ~6.5s
	}, []string{"method", "code"})}
}

// Register registers the histogram with r.
func (g *GRPC) Register(r prometheus.Registerer) error { return r.Register(g.latency) }

// Unary is a unary server interceptor that observes each call.
func (g *GRPC) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	g.latency.WithLabelValues(info.FullMethod, status.Code(err).String()).Observe(time.Since(start).Seconds())
	return resp, err
}

// Stream is a stream server interceptor that observes each stream's whole duration.
func (g *GRPC) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := handler(srv, ss)
	g.latency.WithLabelValues(info.FullMethod, status.Code(err).String()).Observe(time.Since(start).Seconds())
	return err
}
