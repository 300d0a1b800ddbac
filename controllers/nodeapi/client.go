package nodeapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/controllers"
	nodeclient "github.com/cobaltstore/cobalt/node-daemon/client"
	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
)

// volumeAlignment is the granularity of volume sizes on the node (volume.SizeAlignment).
const volumeAlignment = 4096

// Client implements controllers.NodeClient over the node daemons' gRPC API, with one cached
// mTLS connection per daemon address. It is safe for concurrent use.
type Client struct {
	tlsConfig *tls.Config
	// mu guards the fields in this struct.
	mu struct {
		sync.Mutex
		conns map[string]*nodeclient.Client
	}
}

var _ controllers.NodeClient = (*Client)(nil)

// New returns a Client that presents tlsConfig's client certificate (the operator's) to every
// daemon.
func New(tlsConfig *tls.Config) (*Client, error) {
	if tlsConfig == nil || len(tlsConfig.Certificates) == 0 {
		return nil, errors.New("nodeapi: node client needs a TLS configuration with a client certificate")
	}
	n := &Client{tlsConfig: tlsConfig}
	n.mu.conns = make(map[string]*nodeclient.Client)
	return n, nil
}

// Close closes every cached connection.
func (n *Client) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var errs []error
	for addr, c := range n.mu.conns {
		errs = append(errs, c.Close())
		delete(n.mu.conns, addr)
	}
	return errors.Join(errs...)
}

// daemon returns a connection to the daemon serving store and the volume's reference on it.
func (n *Client) daemon(store *storagev1alpha1.Store, vol *storagev1alpha1.Volume) (*nodeclient.Client, *nodepb.VolumeRef, error) {
	c, err := n.daemonFor(store)
	if err != nil {
		return nil, nil, err
	}
	return c, &nodepb.VolumeRef{StoreUuid: store.Status.UUID, VolumeId: vol.NodeVolumeID()}, nil
}

// daemonFor returns a connection to the daemon serving store, which must have an endpoint and a
// UUID.
func (n *Client) daemonFor(store *storagev1alpha1.Store) (*nodeclient.Client, error) {
	addr := store.Annotations[storagev1alpha1.AnnotationNodeEndpoint]
	if addr == "" {
		return nil, fmt.Errorf("store %s has no node daemon endpoint yet (annotation %s)", store.Name, storagev1alpha1.AnnotationNodeEndpoint)
	}
	if store.Status.UUID == "" {
		return nil, fmt.Errorf("store %s has no UUID yet: its device is not prepared", store.Name)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if c, ok := n.mu.conns[addr]; ok {
		return c, nil
	}
	c, err := nodeclient.Dial(addr, n.tlsConfig)
	if err != nil {
		return nil, err
	}
	n.mu.conns[addr] = c
	return c, nil
}

// volumeSize is the volume's requested size rounded up to the node's alignment.
func volumeSize(vol *storagev1alpha1.Volume) (int64, error) {
	size := vol.Spec.Size.Value()
	if size <= 0 {
		return 0, fmt.Errorf("volume %s/%s has size %s", vol.Namespace, vol.Name, vol.Spec.Size.String())
	}
	return (size + volumeAlignment - 1) / volumeAlignment * volumeAlignment, nil
}

// wrapNodeError adds context and marks the errors the reconcilers act on: a full store with
// controllers.ErrInsufficientCapacity, a restore or clone smaller than its source with
// controllers.ErrSmallerThanSource. The status code stays reachable through errors.As.
func wrapNodeError(op string, store *storagev1alpha1.Store, err error) error {
	switch status.Code(err) {
	case codes.ResourceExhausted:
		return fmt.Errorf("%s on store %s: %w: %w", op, store.Name, controllers.ErrInsufficientCapacity, err)
	case codes.OutOfRange:
		return fmt.Errorf("%s on store %s: %w: %w", op, store.Name, controllers.ErrSmallerThanSource, err)
	}
	return fmt.Errorf("%s on store %s: %w", op, store.Name, err)
}

// contentSource is the node's form of source; nil for an empty volume.
func contentSource(source controllers.ContentSource) (*nodepb.VolumeContentSource, error) {
	switch {
	case source.SnapshotID != "" && source.VolumeID != "":
		return nil, fmt.Errorf("content source names both snapshot %s and volume %s", source.SnapshotID, source.VolumeID)
	case source.SnapshotID != "":
		return &nodepb.VolumeContentSource{Source: &nodepb.VolumeContentSource_SnapshotId{SnapshotId: source.SnapshotID}}, nil
	case source.VolumeID != "":
		return &nodepb.VolumeContentSource{Source: &nodepb.VolumeContentSource_VolumeId{VolumeId: source.VolumeID}}, nil
	}
	return nil, nil
}

// CreateVolume implements controllers.NodeClient. A volume that already exists (for example
// created before a resize the reconciler has not seen through) reports its current size. The
// request always names the size, so a retried restore or clone is recognized as the same
// request after its source grew.
func (n *Client) CreateVolume(ctx context.Context, store *storagev1alpha1.Store, vol *storagev1alpha1.Volume, source controllers.ContentSource) (controllers.VolumeAllocation, error) {
	c, ref, err := n.daemon(store, vol)
	if err != nil {
		return controllers.VolumeAllocation{}, err
	}
	size, err := volumeSize(vol)
	if err != nil {
		return controllers.VolumeAllocation{}, err
	}
	src, err := contentSource(source)
	if err != nil {
		return controllers.VolumeAllocation{}, fmt.Errorf("create volume %s/%s: %w", vol.Namespace, vol.Name, err)
	}
	resp, err := c.Volumes.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref, SizeBytes: size, ContentSource: src})
	if status.Code(err) == codes.AlreadyExists {
		got, gerr := c.Volumes.GetVolume(ctx, &nodepb.GetVolumeRequest{Ref: ref})
		if gerr != nil {
			return controllers.VolumeAllocation{}, wrapNodeError("create volume", store, errors.Join(err, gerr))
		}
		return controllers.VolumeAllocation{AllocatedBytes: got.GetVolume().GetSizeBytes()}, nil
	}
	if err != nil {
		return controllers.VolumeAllocation{}, wrapNodeError("create volume", store, err)
	}
	return controllers.VolumeAllocation{AllocatedBytes: resp.GetVolume().GetSizeBytes()}, nil
}

// ResizeVolume implements controllers.NodeClient.
func (n *Client) ResizeVolume(ctx context.Context, store *storagev1alpha1.Store, vol *storagev1alpha1.Volume) (controllers.VolumeAllocation, error) {
	c, ref, err := n.daemon(store, vol)
	if err != nil {
		return controllers.VolumeAllocation{}, err
	}
	size, err := volumeSize(vol)
	if err != nil {
		return controllers.VolumeAllocation{}, err
	}
	resp, err := c.Volumes.ResizeVolume(ctx, &nodepb.ResizeVolumeRequest{Ref: ref, SizeBytes: size})
	if err != nil {
		return controllers.VolumeAllocation{}, wrapNodeError("resize volume", store, err)
	}
	return controllers.VolumeAllocation{AllocatedBytes: resp.GetVolume().GetSizeBytes()}, nil
}

// DeleteVolume implements controllers.NodeClient. Deleting a missing volume succeeds.
func (n *Client) DeleteVolume(ctx context.Context, store *storagev1alpha1.Store, vol *storagev1alpha1.Volume) error {
	c, ref, err := n.daemon(store, vol)
	if err != nil {
		return err
	}
	if _, err := c.Volumes.DeleteVolume(ctx, &nodepb.DeleteVolumeRequest{Ref: ref}); err != nil {
		return wrapNodeError("delete volume", store, err)
	}
	return nil
}
