package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
	"github.com/cobaltstore/cobalt/node-daemon/transport"
)

// Client is a connection to one node daemon. It is safe for concurrent use.
type Client struct {
	conn    *grpc.ClientConn
	Stores  nodepb.StoreServiceClient
	Objects nodepb.ObjectServiceClient
	Volumes nodepb.VolumeServiceClient
	// Replicas is the replica stream a coordinator on another node uses (node-daemon/replica).
	Replicas nodepb.ReplicaServiceClient
	Health   healthpb.HealthClient
}

// Dial connects to the daemon at addr (host:port) with mutual TLS. The connection is made lazily;
// the first call reports an unreachable or refusing daemon.
func Dial(addr string, tlsConfig *tls.Config) (*Client, error) {
	if tlsConfig == nil || len(tlsConfig.Certificates) == 0 && tlsConfig.GetClientCertificate == nil {
		return nil, errors.New("client: TLS configuration without a client certificate")
	}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(transport.NewTLS(tlsConfig)),
		grpc.WithInitialWindowSize(nodepb.StreamWindow),
		grpc.WithInitialConnWindowSize(nodepb.ConnWindow),
		grpc.WithWriteBufferSize(nodepb.SocketBuffer),
		grpc.WithReadBufferSize(nodepb.SocketBuffer),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(nodepb.MaxMessageSize),
			grpc.MaxCallSendMsgSize(nodepb.MaxMessageSize),
		),
	)
	if err != nil {
		return nil, fmt.Errorf("client: dial %s: %w", addr, err)
	}
	return &Client{
		conn:     conn,
		Stores:   nodepb.NewStoreServiceClient(conn),
		Objects:  nodepb.NewObjectServiceClient(conn),
		Volumes:  nodepb.NewVolumeServiceClient(conn),
		Replicas: nodepb.NewReplicaServiceClient(conn),
		Health:   healthpb.NewHealthClient(conn),
	}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Check asks the daemon's grpc.health.v1 service whether it is serving.
func (c *Client) Check(ctx context.Context) error {
	resp, err := c.Health.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return fmt.Errorf("client: health check: %w", err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("client: daemon is %s", resp.GetStatus())
	}
	return nil
}

// CheckHealthSocket asks the grpc.health.v1 service on the daemon's local unix socket (no TLS)
// whether it is serving. It is what the daemon's `health` subcommand runs for exec probes.
func CheckHealthSocket(ctx context.Context, socketPath string) error {
	conn, err := grpc.NewClient("unix://"+socketPath, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("client: health socket %s: %w", socketPath, err)
	}
	defer conn.Close()
	c := &Client{conn: conn, Health: healthpb.NewHealthClient(conn)}
	return c.Check(ctx)
}
