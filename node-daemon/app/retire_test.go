package app

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-logr/logr/testr"
	"github.com/google/uuid"

	"github.com/cobaltstore/cobalt/node-daemon/devices"
	"github.com/cobaltstore/cobalt/node-daemon/metrics"
	"github.com/cobaltstore/cobalt/node-daemon/objstore"
	"github.com/cobaltstore/cobalt/node-daemon/objstore/memstore"
)

// healthStore is a mounted store whose reported health the test sets.
type healthStore struct {
	*memstore.Store
	reason  atomic.Pointer[string] // "" or unset: OK; else Failed with this reason
	message string
	closed  atomic.Int32
}

func (s *healthStore) Snapshot() metrics.StoreSnapshot {
	snap := metrics.StoreSnapshot{UUID: s.UUID(), Health: metrics.HealthOK}
	if r := s.reason.Load(); r != nil && *r != "" {
		snap.Health, snap.HealthReason, snap.HealthMessage = metrics.HealthFailed, *r, s.message
	}
	return snap
}

// Close fails as closing a store over a failed device does.
func (s *healthStore) Close() error {
	s.closed.Add(1)
	if r := s.reason.Load(); r != nil && *r == metrics.HealthReasonDeviceFailed {
		return errors.New("flush deferred writes: input/output error")
	}
	return nil
}

// A store whose device failed (health Failed, reason DeviceFailed) is taken out of service: no
// longer served (NotFound), reported as a device not used with the failure as the reason, and
// closed only when the node closes its stores (its close error logged, not returned). A store
// whose engine failed for another reason (a metadata commit) and a healthy one stay served.
func TestRetireFailedTakesAStoreWhoseDeviceFailedOutOfService(t *testing.T) {
	ctx := context.Background()
	n := newNode(&Config{}, devices.Selection{}, [16]byte{}, nil, nil, testr.New(t), nil)
	mk := func(path string) (*device, *healthStore) {
		s := &healthStore{Store: memstore.New(uuid.NewString(), 64<<20), message: "the device failed at 2026-12-07T11:00:00Z: write /dev/x at 4096: input/output error"}
		return &device{decision: devices.Decision{Path: path, Action: devices.Mount}, store: s}, s
	}
	failing, fs := mk("/dev/failing")
	commitFailed, cs := mk("/dev/commit-failed")
	healthy, _ := mk("/dev/healthy")
	n.register(ctx, []*device{failing, commitFailed, healthy})
	other := "CommitFailed"
	cs.reason.Store(&other)

	if got := n.retireFailed(); len(got) != 0 {
		t.Fatalf("retired %d devices while none failed", len(got))
	}
	reason := metrics.HealthReasonDeviceFailed
	fs.reason.Store(&reason)
	got := n.retireFailed()
	if len(got) != 1 || got[0] != failing {
		t.Fatalf("retired %v, want only %s", got, failing.decision.Path)
	}
	if _, err := n.stores.Get(fs.UUID()); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("the retired store is still served: Get = %v, want NotFound", err)
	}
	for _, s := range []*healthStore{cs, healthy.store.(*healthStore)} {
		if _, err := n.stores.Get(s.UUID()); err != nil {
			t.Fatalf("store %s is no longer served: %v", s.UUID(), err)
		}
	}
	for _, r := range n.reports() {
		switch r.device {
		case failing:
			if r.snap != nil || !strings.Contains(r.device.reason, fs.UUID()) || !strings.Contains(r.device.reason, fs.message) {
				t.Fatalf("report of the failed device: snapshot %v, reason %q; want none and a reason naming the store and the failure", r.snap, r.device.reason)
			}
		default:
			if r.snap == nil {
				t.Fatalf("report of %s has no snapshot", r.device.decision.Path)
			}
		}
	}
	if got := n.retireFailed(); len(got) != 0 {
		t.Fatalf("retired %d devices again", len(got))
	}
	if fs.closed.Load() != 0 {
		t.Fatal("the retired store was closed while calls in flight may hold it")
	}
	if err := n.closeStores(); err != nil {
		t.Fatalf("closeStores: %v, want the retired store's close error only logged", err)
	}
	if fs.closed.Load() != 1 {
		t.Fatalf("the retired store was closed %d times at closeStores, want once", fs.closed.Load())
	}
}
