package csinode

import (
	"context"
	"errors"
	"fmt"
)

// RecoveryFailure is a staged volume Recover could not serve again.
type RecoveryFailure struct {
	// VolumeID is the CSI volume ID; Volume the Volume object, "<namespace>/<name>", if known.
	VolumeID, Volume string
	Err              error
}

// Recover serves every staged volume again after a restart of the node daemon, before the CSI
// service is served: kubelet does not stage a volume again, so the node plugin must. For each
// stage record it exposes the volume as a new device; for mount access it detaches the staging
// mount of the dead device and mounts the new device there (never formatting); then it binds
// every recorded publish target again (the staging mount, or the device for block access).
// A replicated volume is reopened at its recorded attachment generation; one that was attached
// elsewhere meanwhile fails as fenced (FailedPrecondition) and the others are served regardless.
// It never stops at a volume it cannot serve: it returns those, with the reason, and logs them.
func (s *Server) Recover(ctx context.Context) []RecoveryFailure {
	recs, errs := s.records.list()
	var failed []RecoveryFailure
	for _, err := range errs {
		s.log.Error(err, "cannot read a stage record; its volume is not re-served")
		failed = append(failed, RecoveryFailure{Err: err})
	}
	for _, r := range recs {
		if err := s.recoverOne(ctx, r); err != nil {
			s.log.Error(err, "cannot re-serve a staged volume; its Pods get I/O errors until it is staged again", "volume", r.VolumeID, "object", r.Volume)
			failed = append(failed, RecoveryFailure{VolumeID: r.VolumeID, Volume: r.Volume, Err: err})
			continue
		}
		s.log.Info("volume re-served", "volume", r.VolumeID, "device", r.Device, "stagingPath", r.StagingPath, "targets", len(r.Targets),
			"replicas", r.Replicas, "generation", r.Generation)
	}
	return failed
}

func (s *Server) recoverOne(ctx context.Context, r *record) error {
	release, err := s.inflight.acquire(r.VolumeID, "Recover")
	if err != nil {
		return err
	}
	defer release()
	if err := s.expose(ctx, r); err != nil {
		return fmt.Errorf("expose: %w", err)
	}
	targets := r.targetPaths()
	if r.AccessType == accessMount {
		// Detach the stale publish mounts before the staging mount, so that the dead device's file
		// system is released (when no container holds it any more) before the new device is
		// mounted: two live mounts of one file system never coexist.
		for _, tp := range targets {
			if st, err := s.stateOf(r, tp); err == nil && st == mountOther {
				if err := detach(tp); err != nil {
					return fmt.Errorf("publish target %s: %w", tp, err)
				}
			}
		}
		if err := s.mountStaging(r, true, true); err != nil {
			return fmt.Errorf("mount at the staging path: %w", err)
		}
	}
	var errs []error
	for _, tp := range targets {
		if err := s.publish(r, tp, r.Targets[tp], true); err != nil {
			errs = append(errs, fmt.Errorf("publish target %s: %w", tp, err))
		}
	}
	return errors.Join(errs...)
}
