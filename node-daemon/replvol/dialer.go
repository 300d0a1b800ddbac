package replvol

import (
	"context"
	"crypto/tls"
	"errors"
	"io"

	"github.com/cobaltstore/cobalt/node-daemon/client"
	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
)

// NodeAPIDialer is the Dialer of a node daemon: a connection per copy over the node API, with the
// peer mutual-TLS configuration (a client certificate of the cluster's CA).
type NodeAPIDialer struct {
	TLS *tls.Config
}

var _ Dialer = NodeAPIDialer{}

// Dial implements Dialer.
func (d NodeAPIDialer) Dial(_ context.Context, endpoint string) (nodepb.ReplicaServiceClient, io.Closer, error) {
	if d.TLS == nil {
		return nil, nil, errors.New("replvol: NodeAPIDialer needs the peer TLS configuration")
	}
	cl, err := client.Dial(endpoint, d.TLS)
	if err != nil {
		return nil, nil, err
	}
	return cl.Replicas, cl, nil
}
