package main

import (
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/cobaltstore/cobalt/csi/controller"
	"github.com/cobaltstore/cobalt/csi/driver"
)

// csiServer is the CSI controller plugin as a Runnable that every replica runs, leader or not:
// each replica's Pod has its own CSI sidecars talking to its own socket, and the
// external-provisioner and external-resizer elect their own leader among them. Serving needs no
// leadership either, since the plugin only creates Volumes; the elected operator reconciles them.
type csiServer struct{ *driver.Server }

// NeedLeaderElection implements manager.LeaderElectionRunnable.
func (csiServer) NeedLeaderElection() bool { return false }

// addCSIServer adds the CSI controller plugin serving on endpoint to mgr, with its Volumes in
// namespace (the operator's).
func addCSIServer(mgr ctrl.Manager, endpoint, namespace string) error {
	log := ctrl.Log.WithName("csi-controller")
	cs, err := controller.New(controller.Options{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Namespace: namespace, Log: log,
	})
	if err != nil {
		return err
	}
	srv := &driver.Server{
		Endpoint:   endpoint,
		Identity:   &driver.Identity{Ready: cs.Ready},
		Controller: cs,
		Log:        log,
	}
	if err := mgr.Add(csiServer{srv}); err != nil {
		return fmt.Errorf("add the CSI controller plugin: %w", err)
	}
	return nil
}
